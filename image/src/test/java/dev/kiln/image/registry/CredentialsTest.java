package dev.kiln.image.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CredentialsTest {
    @TempDir Path tmp;

    @Test
    void aUserWithoutAPasswordIsRefusedNotSentAsNull() {
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new Credentials(null, null, "robot", null));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("KILN_REGISTRY_PASSWORD is not"), e.getMessage());
        assertEquals(new Credentials.Login("robot", "pw"), new Credentials(null, null, "robot", "pw").forHost("x.example"));
    }

    @Test
    void aHangingCredentialHelperTimesOut() throws Exception {
        Path helper = tmp.resolve("docker-credential-hang");
        Files.writeString(helper, "#!/bin/sh\nexec sleep 60\n");
        Files.setPosixFilePermissions(helper, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path cfg = tmp.resolve("config.json");
        Files.writeString(cfg, "{\"credsStore\":\"hang\"}");
        Credentials c = new Credentials(null, cfg, null, null);
        c.helperDir = tmp;
        long old = Credentials.HELPER_TIMEOUT_SECONDS;
        Credentials.HELPER_TIMEOUT_SECONDS = 1;
        try {
            RegistryException e = org.junit.jupiter.api.Assertions.assertThrows(RegistryException.class,
                    () -> c.forHost("ghcr.io"));
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("gave no answer in 1 s"), e.getMessage());
        } finally {
            Credentials.HELPER_TIMEOUT_SECONDS = old;
        }
    }

    @Test
    void explicitCredentialsWin() {
        assertEquals(new Credentials.Login("u", "p:w"), new Credentials("u:p:w", null).forHost("ghcr.io"));
    }

    @Test
    void dockerConfigAuthsHelpersAndStore() throws Exception {
        Path helper = tmp.resolve("docker-credential-fake");
        Files.writeString(helper, "#!/bin/sh\nread server\nif [ \"$server\" = \"helped.example\" ] || "
                + "[ \"$server\" = \"stored.example\" ]; then\n"
                + "  echo \"{\\\"Username\\\":\\\"helper-user\\\",\\\"Secret\\\":\\\"for-$server\\\"}\"\nelse\n"
                + "  echo 'credentials not found' >&2; exit 1\nfi\n");
        Files.setPosixFilePermissions(helper, PosixFilePermissions.fromString("rwxr-xr-x"));
        String auth = Base64.getEncoder().encodeToString("alice:s3cret".getBytes());
        Path cfg = tmp.resolve("config.json");
        Files.writeString(cfg, "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"" + auth + "\"},"
                + "\"https://index.docker.io/v1/\":{\"auth\":\"" + auth + "\"},"
                + "\"tok.example\":{\"identitytoken\":\"abc\"}},"
                + "\"credHelpers\":{\"helped.example\":\"fake\"}}");
        Credentials c = new Credentials(null, cfg);
        c.helperDir = tmp;
        assertEquals(new Credentials.Login("alice", "s3cret"), c.forHost("127.0.0.1:5000"));
        assertEquals(new Credentials.Login("alice", "s3cret"), c.forHost("registry-1.docker.io"));
        assertEquals(new Credentials.Login("<token>", "abc"), c.forHost("tok.example"));
        assertEquals(new Credentials.Login("helper-user", "for-helped.example"), c.forHost("helped.example"));
        assertNull(c.forHost("unknown.example"));

        Path store = tmp.resolve("store.json");
        Files.writeString(store, "{\"credsStore\":\"fake\"}");
        Credentials s = new Credentials(null, store);
        s.helperDir = tmp;
        assertEquals(new Credentials.Login("helper-user", "for-stored.example"), s.forHost("stored.example"));
        assertNull(s.forHost("other.example"));
        assertNull(new Credentials(null, tmp.resolve("missing.json")).forHost("ghcr.io"));
    }
}
