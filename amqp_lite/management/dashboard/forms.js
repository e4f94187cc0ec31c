// Forms shared by several pages: publishing a message and adding a binding.

import { post } from "./api.js";
import {
  apiPath,
  attempt,
  exchangeLabel,
  exchangeSegment,
  field,
  h,
  keyValues,
  select,
  status,
} from "./ui.js";

const PROPERTY_SUGGESTIONS = [
  ["content_type", "string", "content_type"],
  ["correlation_id", "string", "correlation_id"],
  ["message_id", "string", "message_id"],
  ["reply_to", "string", "reply_to"],
  ["expiration", "string", "expiration"],
  ["priority", "number", "priority"],
  ["type", "string", "type"],
  ["app_id", "string", "app_id"],
];

/**
 * The publish form of RabbitMQ's exchange and queue pages. `fixedKey` (a queue's name) hides
 * the routing key field; `onPublished(routed)` is told the outcome.
 */
export function publishForm(vhost, exchange, { fixedKey = null, onPublished = () => {} } = {}) {
  const routingKey = h("input", { name: "routing_key", value: fixedKey ?? "", autocomplete: "off" });
  const deliveryMode = select("delivery_mode", [["1", "1 – non-persistent"], ["2", "2 – persistent"]], "1");
  const headers = keyValues([], { nameLabel: "header" });
  const properties = keyValues(PROPERTY_SUGGESTIONS, { nameLabel: "property" });
  const payload = h("textarea", { name: "payload", rows: 4, placeholder: "message body" });
  const line = status();
  const form = h(
    "form",
    {
      class: "stacked publish-form",
      onsubmit: async (event) => {
        event.preventDefault();
        line.clear();
        await attempt(line, async () => {
          const props = { delivery_mode: Number(deliveryMode.value), ...properties.value() };
          const given = headers.value();
          if (Object.keys(given).length) props.headers = given;
          const answer = await post(apiPath("exchanges", vhost, exchangeSegment(exchange), "publish"), {
            properties: props,
            routing_key: routingKey.value,
            payload: payload.value,
            payload_encoding: "string",
          });
          line.show(
            answer.routed ? "Message published." : "Message published, but not routed.",
            answer.routed ? "ok" : "warn",
          );
          onPublished(answer.routed);
        });
      },
    },
    fixedKey === null ? field("Routing key", routingKey) : null,
    field("Delivery mode", deliveryMode),
    field("Headers", headers, "A header typed List is an array: CC and BCC headers route by it."),
    field("Properties", properties),
    field("Payload", payload),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Publish message")),
    line,
  );
  return form;
}

/**
 * Add a binding. `from` fixed: the destination is chosen (queue or exchange); `to` fixed: the
 * source exchange is chosen. `exchanges()` lists the vhost's exchange names for the choice.
 */
export function bindingForm(vhost, { from = null, to = null, exchanges, onBound }) {
  const kind = select("destination_type", [["q", "To queue"], ["e", "To exchange"]], "q");
  const destination = h("input", { name: "destination", autocomplete: "off", required: true });
  const source = h("input", { name: "source", autocomplete: "off", required: true });
  const choices = h("datalist", { id: `exchanges-${Math.random().toString(36).slice(2)}` });
  source.setAttribute("list", choices.id);
  const routingKey = h("input", { name: "routing_key", autocomplete: "off" });
  const args = keyValues([["x-match", "string", "x-match (headers)"]]);
  const line = status();
  const fill = async () => {
    const names = await exchanges();
    choices.replaceChildren(...names.filter((n) => n !== "").map((n) => h("option", { value: n }, exchangeLabel(n))));
  };
  if (from === null) fill().catch(() => {});
  const form = h(
    "form",
    {
      class: "stacked",
      onsubmit: async (event) => {
        event.preventDefault();
        line.clear();
        await attempt(line, async () => {
          const [sourceName, type, destinationName] =
            from !== null ? [from, kind.value, destination.value] : [source.value, to.type, to.name];
          await post(apiPath("bindings", vhost, "e", exchangeSegment(sourceName), type, destinationName), {
            routing_key: routingKey.value,
            arguments: args.value(),
          });
          line.show("Bound.");
          routingKey.value = "";
          args.reset();
          onBound();
        });
      },
    },
    from !== null
      ? h("div", { class: "inline" }, field("Destination", kind), field("Name", destination))
      : [field("From exchange", source), choices],
    field("Routing key", routingKey),
    field("Arguments", args),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Bind")),
    line,
  );
  return form;
}
