package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;

/**
 * Where registry credentials come from, first match wins: {@code --creds user:pass}, the
 * {@code KILN_REGISTRY_USER}/{@code KILN_REGISTRY_PASSWORD} environment, then the Docker config
 * ({@code $REGISTRY_AUTH_FILE}, else {@code $DOCKER_CONFIG/config.json}, else
 * {@code ~/.docker/config.json}): {@code credHelpers} and {@code credsStore} through their
 * {@code docker-credential-*} helpers, and {@code auths}.
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
        this(creds, authFile, System.getenv("KILN_REGISTRY_USER"), System.getenv("KILN_REGISTRY_PASSWORD"));
    }

    /**
     * @param envUser {@code KILN_REGISTRY_USER} (null when unset)
     * @param envPassword {@code KILN_REGISTRY_PASSWORD}; required when {@code envUser} is given
     */
    Credentials(String creds, Path authFile, String envUser, String envPassword) {
        Login l = null;
        if (creds != null) {
            int c = creds.indexOf(':');
            if (c <= 0) {
                throw new IllegalArgumentException("--creds wants USER:PASSWORD");
            }
            l = new Login(creds.substring(0, c), creds.substring(c + 1));
        } else if (envUser != null) {
            if (envPassword == null) {
                throw new IllegalArgumentException("KILN_REGISTRY_USER is set but KILN_REGISTRY_PASSWORD is not; set both, "
                        + "or unset KILN_REGISTRY_USER to use the Docker config");
            }
            l = new Login(envUser, envPassword);
        }
        this.explicit = l;
        this.authFile = authFile;
    }

    /** The default: --creds (may be null), then the Docker config {@link #configFile()} names. */
    public static Credentials defaults(String creds) {
        return new Credentials(creds, configFile());
    }

    /**
     * The Docker config file: {@code $REGISTRY_AUTH_FILE} (podman, skopeo), else
     * {@code $DOCKER_CONFIG/config.json} (docker, skopeo, buildah, Jib), else
     * {@code ~/.docker/config.json}.
     */
    public static Path configFile() {
        String f = System.getenv("REGISTRY_AUTH_FILE");
        if (f != null && !f.isBlank()) {
            return Path.of(f);
        }
        String dir = System.getenv("DOCKER_CONFIG");
        if (dir != null && !dir.isBlank()) {
            return Path.of(dir, "config.json");
        }
        return Path.of(System.getProperty("user.home"), ".docker", "config.json");
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
            Process p = new ProcessBuilder(exe, "get").redirectError(ProcessBuilder.Redirect.DISCARD).start();
            p.getOutputStream().write(server.getBytes(StandardCharsets.UTF_8));
            p.getOutputStream().close();
            // Read on another thread and wait with a deadline: a helper that hangs (asking for a
            // keyring password, say) keeps its output open, so reading first would never time out.
            String out;
            try {
                out = dev.kiln.image.Subprocess.drainAndWait(p, HELPER_TIMEOUT_SECONDS, exe + " get");
            } catch (java.io.InterruptedIOException e) {
                Thread.currentThread().interrupt();
                return null;
            } catch (IOException e) {
                throw new RegistryException(exe + ": the credential helper gave no answer in " + HELPER_TIMEOUT_SECONDS
                        + " s (does it wait for a keyring or a prompt?); unlock it or remove it from " + configFile(), e);
            }
            if (p.exitValue() != 0) {
                return null; // the helper knows no credentials for this server
            }
            JsonNode j = new ObjectMapper().readTree(out);
            String user = j.path("Username").asText("");
            String secret = j.path("Secret").asText("");
            return secret.isEmpty() ? null : new Login(user, secret);
        } catch (IOException e) {
            throw new RegistryException(exe + ": cannot run the credential helper named in the Docker config ("
                    + e.getMessage() + "); install it or remove it from the config", e);
        }
    }

    /** How long a credential helper may take. */
    static long HELPER_TIMEOUT_SECONDS = 30;
}
