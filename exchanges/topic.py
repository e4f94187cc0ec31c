"""Topic exchange: dot-separated words, ``*`` takes exactly one word, ``#`` zero or more.

Routing walks a trie of binding words instead of testing every binding, so cost grows with
the routing key's length and the wildcards on the way, not with the number of bindings.
Words follow RabbitMQ: the empty key has no words, otherwise every dot separates words, so
"a..b" has three and "a." has two (the last one empty).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

from exchanges.base import BindingId, Router
from exchanges.explain import BindingVerdict, quote

Captures = tuple[tuple[str, str], ...]

# Distinct routing keys remembered per exchange; publishers tend to reuse a few keys.
CACHE_SIZE = 1024


def split_words(key: str) -> list[str]:
    return key.split(".") if key else []


class _Node:
    __slots__ = ("dests", "hash", "star", "words")

    def __init__(self) -> None:
        self.words: dict[str, _Node] = {}  # literal next words
        self.star: _Node | None = None  # next word is '*'
        self.hash: _Node | None = None  # next word is '#'
        # Destinations of bindings ending here, counted because one destination may hold
        # several bindings with this key (different arguments).
        self.dests: dict[Hashable, int] = {}

    def child(self, word: str) -> _Node | None:
        if word == "*":
            return self.star
        if word == "#":
            return self.hash
        return self.words.get(word)

    def add_child(self, word: str) -> _Node:
        node = _Node()
        if word == "*":
            self.star = node
        elif word == "#":
            self.hash = node
        else:
            self.words[word] = node
        return node

    def drop_child(self, word: str) -> None:
        if word == "*":
            self.star = None
        elif word == "#":
            self.hash = None
        else:
            del self.words[word]

    def is_empty(self) -> bool:
        return not (self.dests or self.words or self.star or self.hash)


class TopicRouter(Router):
    type_name: ClassVar[str] = "topic"

    def __init__(self) -> None:
        super().__init__()
        self._root = _Node()
        self._cache: dict[str, tuple[Hashable, ...]] = {}

    def route(
        self, routing_key: str, headers: Mapping[str, Any] | None = None
    ) -> tuple[Hashable, ...]:
        cached = self._cache.get(routing_key)
        if cached is not None:
            return cached
        result = tuple(self._walk(split_words(routing_key)))
        if len(self._cache) >= CACHE_SIZE:
            del self._cache[next(iter(self._cache))]  # evict the oldest entry
        self._cache[routing_key] = result
        return result

    def _walk(self, words: list[str]) -> dict[Hashable, int]:
        """Destinations of every binding matching ``words`` (keys of the returned dict)."""
        end = len(words)
        found: dict[Hashable, int] = {}
        stack = [(self._root, 0)]
        # A '#' node can be reached at the same position along several paths ("#.#",
        # "#.a.#"); remembering (node, position) keeps the walk linear in such cases.
        seen: set[tuple[_Node, int]] = set()
        while stack:
            node, i = stack.pop()
            after_hash = node.hash
            if after_hash is not None:
                for j in range(i, end + 1):  # '#' takes words[i:j], possibly none
                    if (after_hash, j) not in seen:
                        seen.add((after_hash, j))
                        stack.append((after_hash, j))
            if i == end:
                if node.dests:
                    found.update(node.dests)
                continue
            literal = node.words.get(words[i])
            if literal is not None:
                stack.append((literal, i + 1))
            if node.star is not None:
                stack.append((node.star, i + 1))
        return found

    def _index_add(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        destination, key, _ = binding_id
        node = self._root
        for word in split_words(key):
            node = node.child(word) or node.add_child(word)
        node.dests[destination] = node.dests.get(destination, 0) + 1
        self._cache.clear()

    def _index_remove(self, binding_id: BindingId, arguments: dict[str, Any]) -> None:
        destination, key, _ = binding_id
        words = split_words(key)
        path = [self._root]
        for word in words:
            child = path[-1].child(word)
            assert child is not None, "binding missing from the trie"
            path.append(child)
        node = path[-1]
        node.dests[destination] -= 1
        if not node.dests[destination]:
            del node.dests[destination]
        # Prune nodes no binding passes through any more, deepest first.
        for depth in range(len(words), 0, -1):
            if not path[depth].is_empty():
                break
            path[depth - 1].drop_child(words[depth - 1])
        self._cache.clear()

    def _verdict(
        self,
        destination: Hashable,
        binding_key: str,
        arguments: dict[str, Any],
        routing_key: str,
        headers: Mapping[str, Any] | None,
    ) -> BindingVerdict:
        captures, why = explain_match(binding_key, routing_key)
        return BindingVerdict(
            destination,
            binding_key,
            arguments,
            captures is not None,
            why,
            captures or (),
        )


def explain_match(binding_key: str, routing_key: str) -> tuple[Captures | None, str]:
    """Match one binding key against a routing key for a human: the words each wildcard
    took (``#`` takes as few as it can) or, on failure, where matching got furthest."""
    pattern, words = split_words(binding_key), split_words(routing_key)
    heading = f"topic {quote(binding_key)}"
    if not pattern:
        if words:
            return None, "an empty binding key matches only the empty routing key"
        return (), "an empty binding key matches the empty routing key"

    dead_ends: set[tuple[int, int]] = set()
    furthest = (-1, "")  # (routing word index, why matching stopped there)

    def stuck(at: int, why: str) -> None:
        nonlocal furthest
        if at > furthest[0]:
            furthest = (at, why)

    # Steps are (wildcard, words it took); keeping the list tells "no words" from one empty word.
    def walk(p: int, w: int) -> list[tuple[str, list[str]]] | None:
        if (p, w) in dead_ends:
            return None
        if p == len(pattern):
            if w == len(words):
                return []
            stuck(w, f"{quote('.'.join(words[w:]))} is left over after the last binding word")
        elif pattern[p] == "#":
            for stop in range(w, len(words) + 1):
                rest = walk(p + 1, stop)
                if rest is not None:
                    return [("#", words[w:stop]), *rest]
        elif w == len(words):
            stuck(w, f"the routing key ran out of words before {quote(pattern[p])}")
        elif pattern[p] == "*":
            rest = walk(p + 1, w + 1)
            if rest is not None:
                return [("*", [words[w]]), *rest]
        elif pattern[p] == words[w]:
            rest = walk(p + 1, w + 1)
            if rest is not None:
                return rest
        else:
            stuck(w, f"word {w + 1} is {quote(words[w])}, not {quote(pattern[p])}")
        dead_ends.add((p, w))
        return None

    found = walk(0, 0)
    if found is None:
        return None, f"{heading} did not match {quote(routing_key)}: {furthest[1]}"
    if not found:
        return (), f"{heading} matched {quote(routing_key)} word for word"
    took = ", ".join(
        f"{quote(wild)} took " + (quote(".".join(taken)) if taken else "no words")
        for wild, taken in found
    )
    captures = tuple((wild, ".".join(taken)) for wild, taken in found)
    return captures, f"{heading} matched {quote(routing_key)}: {took}"
