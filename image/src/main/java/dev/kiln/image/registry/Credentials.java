package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.concurrent.TimeUnit;

/**
 * Where registry credentials come from, first match wins: {@code --creds user:pass}, the
 * {@code KILN_REGISTRY_USER}/{@code KILN_REGISTRY_PASSWORD} environment, then the Docker config
 * ({@code $REGISTRY_AUTH_FILE}, else {@code ~/.docker/config.json}): {@code credHelpers} and
 * {@code credsStore} through their {@code docker-credential-*} helpers, and {@code auths}.
 */
public final class Credentials {
    /** A user and secret; user "<token>" with an identity token means token exchange. */
    public record Login(String user, String secret) {
        public String basic() {
            return Base64.getEncoder().encodeToString((user + ":" + secret).getBytes(StandardCharsets.UTF_8));
        }
    }

    private final Login explicit;
    private final Path authFile;
    /** Where docker-credential-* helpers are looked up; null means $PATH. */
    Path helperDir;

    public Credentials(String creds, Path authFile) {
        Login l = null;
        if (creds != null) {
            int c = creds.indexOf(':');
            if (c <= 0) {
                throw new IllegalArgumentException("--creds wants USER:PASSWORD");
            }
            l = new Login(creds.substring(0, c), creds.substring(c + 1));
        } else if (System.getenv("KILN_REGISTRY_USER") != null) {
            l = new Login(System.getenv("KILN_REGISTRY_USER"), String.valueOf(System.getenv("KILN_REGISTRY_PASSWORD")));
        }
        this.explicit = l;
        this.authFile = authFile;
    }

    /** The default: --creds (may be null), then $REGISTRY_AUTH_FILE or ~/.docker/config.json. */
    public static Credentials defaults(String creds) {
        String f = System.getenv("REGISTRY_AUTH_FILE");
        Path p = f != null ? Path.of(f) : Path.of(System.getProperty("user.home"), ".docker", "config.json");
        return new Credentials(creds, p);
    }

    public Login forHost(String host) {
        if (explicit != null) {
            return explicit;
        }
        if (authFile == null || !Files.isRegularFile(authFile)) {
            return null;
        }
        JsonNode cfg;
        try {
            cfg = new ObjectMapper().readTree(authFile.toFile());
        } catch (IOException e) {
            throw new RegistryException(authFile + ": not valid JSON (" + e.getMessage() + "); fix or remove it", e);
        }
        String[] keys = host.equals("registry-1.docker.io") || host.equals(ImageReference.DOCKER_HUB)
                ? new String[] {"https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"}
                : new String[] {host, "https://" + host, "http://" + host};
        for (String k : keys) {
            String helper = cfg.path("credHelpers").path(k).asText(null);
            if (helper != null) {
                return helper(helperDir, helper, k);
            }
        }
        for (String k : keys) {
            JsonNode a = cfg.path("auths").path(k);
            if (!a.isMissingNode()) {
                if (a.has("identitytoken")) {
                    return new Login("<token>", a.path("identitytoken").asText());
                }
                if (a.has("auth")) {
                    String dec = new String(Base64.getDecoder().decode(a.path("auth").asText()), StandardCharsets.UTF_8);
                    int c = dec.indexOf(':');
                    if (c > 0) {
                        return new Login(dec.substring(0, c), dec.substring(c + 1));
                    }
                }
            }
        }
        String store = cfg.path("credsStore").asText(null);
        return store == null ? null : helper(helperDir, store, keys[0]);
    }

    private static Login helper(Path dir, String name, String server) {
        String exe = (dir == null ? "" : dir + "/") + "docker-credential-" + name;
        try {
            Process p = new ProcessBuilder(exe, "get").redirectErrorStream(false).start();
            p.getOutputStream().write(server.getBytes(StandardCharsets.UTF_8));
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
                return null; // the helper knows no credentials for this server
            }
            JsonNode j = new ObjectMapper().readTree(out);
            String user = j.path("Username").asText("");
            String secret = j.path("Secret").asText("");
            return secret.isEmpty() ? null : new Login(user, secret);
        } catch (IOException e) {
            throw new RegistryException(exe + ": cannot run the credential helper named in the Docker config ("
                    + e.getMessage() + "); install it or remove it from the config", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }
}
