// The RabbitMQ Java client over TLS: declare a queue, publish with a confirm, get the message back.
//
// Usage: java TlsRoundTrip URI CA_PEM [CLIENT_CERT_PEM CLIENT_KEY_PEM]
// With a client certificate the login is EXTERNAL (the certificate is the user); without, the
// URI's user and password (PLAIN). Prints the body it got back, and exits 0.

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultSaslConfig;
import com.rabbitmq.client.GetResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public class TlsRoundTrip {
    public static void main(String[] args) throws Exception {
        boolean withCertificate = args.length == 4;
        ConnectionFactory factory = new ConnectionFactory();
        factory.setUri(args[0]);
        factory.useSslProtocol(context(args[1], withCertificate ? args[2] : null,
                                       withCertificate ? args[3] : null));
        if (withCertificate) {
            factory.setSaslConfig(DefaultSaslConfig.EXTERNAL);
        }
        try (Connection connection = factory.newConnection()) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare().getQueue();
            channel.confirmSelect();
            channel.basicPublish("", queue, null, "over TLS from Java".getBytes(StandardCharsets.UTF_8));
            channel.waitForConfirmsOrDie(10_000);
            GetResponse response = channel.basicGet(queue, true);
            System.out.println(new String(response.getBody(), StandardCharsets.UTF_8));
        }
    }

    static SSLContext context(String caPem, String certPem, String keyPem) throws Exception {
        CertificateFactory x509 = CertificateFactory.getInstance("X.509");
        KeyStore trusted = KeyStore.getInstance("PKCS12");
        trusted.load(null, null);
        try (var in = Files.newInputStream(Path.of(caPem))) {
            trusted.setCertificateEntry("ca", x509.generateCertificate(in));
        }
        TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        trust.init(trusted);
        KeyManagerFactory keys = null;
        if (certPem != null) {
            Certificate certificate;
            try (var in = Files.newInputStream(Path.of(certPem))) {
                certificate = x509.generateCertificate(in);
            }
            String pem = Files.readString(Path.of(keyPem));
            String base64 = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
            PrivateKey key = KeyFactory.getInstance("EC")
                    .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(base64)));
            KeyStore own = KeyStore.getInstance("PKCS12");
            own.load(null, null);
            own.setKeyEntry("client", key, new char[0], new Certificate[] {certificate});
            keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keys.init(own, new char[0]);
        }
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys == null ? null : keys.getKeyManagers(), trust.getTrustManagers(), null);
        return context;
    }
}
