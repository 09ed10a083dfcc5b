package dev.kiln.image.registry;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Test;

class RegistryClientTest {
    @Test
    void plainHttpOnlyForLoopbackOrNamedHosts() {
        RegistryClient c = new RegistryClient(new Credentials(null, null), Set.of("registry.lan:5000", "plain.example"));
        assertTrue(c.plainHttp("127.0.0.1:5000"));
        assertTrue(c.plainHttp("127.0.0.2"));
        assertTrue(c.plainHttp("localhost:5000"));
        assertTrue(c.plainHttp("[::1]:5000"));
        assertTrue(c.plainHttp("registry.lan:5000"));
        assertTrue(c.plainHttp("plain.example:443"));
        assertFalse(c.plainHttp("registry-1.docker.io"));
        assertFalse(c.plainHttp("ghcr.io"));
        assertFalse(c.plainHttp("10.0.0.1:5000"));
        assertFalse(c.plainHttp("registry.lan:5001"));
        assertTrue(c.base(ImageReference.parse("alpine")).startsWith("https://registry-1.docker.io/v2/library/alpine"));
        assertTrue(c.base(ImageReference.parse("127.0.0.1:5000/a/b")).startsWith("http://127.0.0.1:5000/v2/a/b"));
    }
}
