package dev.kiln.image.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The OCI distribution API v2: pulling manifests and blobs, and pushing them (existence checks,
 * cross-repository mounts, monolithic and chunked uploads, manifests); bearer tokens (the
 * WWW-Authenticate flow Docker Hub and GHCR use) and basic credentials, retries with backoff on
 * 429, 5xx and connection errors. Plain HTTP only for loopback or hosts named insecure.
 */
public final class RegistryClient {
    static final String ACCEPT = String.join(", ",
            "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json");
    private static final Pattern PARAM = Pattern.compile("(\\w+)=\"([^\"]*)\"");
    /** Created on first use: a build from dir: or tar: makes a client but never parses JSON. */
    private static final class Holder {
        static final ObjectMapper JSON = new ObjectMapper();
    }

    private HttpClient http;
    private final Credentials credentials;
    private final Set<String> insecure;
    private final int maxAttempts;
    private final long backoffMillis;
    /** Tokens by host and scope; the layer downloads share them from several threads. */
    private final Map<String, String> tokens = new java.util.concurrent.ConcurrentHashMap<>();

    public RegistryClient(Credentials credentials, Set<String> insecure) {
        this(credentials, insecure, 5, 500);
    }

    /** With a custom retry policy: attempts per request, and the first backoff (doubling each time). */
    public RegistryClient(Credentials credentials, Set<String> insecure, int maxAttempts, long backoffMillis) {
        this.credentials = credentials;
        this.insecure = insecure;
        this.maxAttempts = maxAttempts;
        this.backoffMillis = backoffMillis;
    }

    /** The HTTP client, made on first use: builds from local sources never start one. */
    private synchronized HttpClient http() {
        if (http == null) {
            http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30))
                    .followRedirects(HttpClient.Redirect.NORMAL).build();
        }
        return http;
    }

    /** A manifest or index: its bytes and media type. */
    public record Manifest(byte[] bytes, String mediaType) {}

    String base(ImageReference ref) {
        String host = ref.apiHost();
        return (plainHttp(host) ? "http://" : "https://") + host + "/v2/" + ref.repository();
    }

    boolean plainHttp(String host) {
        String h = host.startsWith("[") ? host.substring(1, host.indexOf(']')) : host.replaceFirst(":[0-9]+$", "");
        if (insecure.contains(host) || insecure.contains(h) || h.equals("localhost")) {
            return true;
        }
        try {
            return h.matches("[0-9.]+|[0-9a-fA-F:]+") && InetAddress.getByName(h).isLoopbackAddress();
        } catch (IOException e) {
            return false;
        }
    }

    public Manifest manifest(ImageReference ref, String reference) {
        HttpResponse<byte[]> r = send(ref, base(ref) + "/manifests/" + reference, Map.of("Accept", ACCEPT),
                HttpResponse.BodyHandlers.ofByteArray(), "manifest " + reference);
        String type = r.headers().firstValue("Content-Type").orElse("").replaceFirst(";.*", "").trim();
        return new Manifest(r.body(), type);
    }

    /** A blob's bytes from {@code offset} on; {@code partial} in the result says whether the range was honoured. */
    public record BlobStream(InputStream in, boolean partial, long length) {}

    public BlobStream blob(ImageReference ref, String digest, long offset) {
        Map<String, String> h = offset > 0 ? Map.of("Range", "bytes=" + offset + "-") : Map.of();
        HttpResponse<InputStream> r = send(ref, base(ref) + "/blobs/" + digest, h, HttpResponse.BodyHandlers.ofInputStream(),
                "blob " + digest);
        return new BlobStream(r.body(), r.statusCode() == 206, r.headers().firstValueAsLong("Content-Length").orElse(-1));
    }

    private <T> HttpResponse<T> send(ImageReference ref, String url, Map<String, String> headers,
            HttpResponse.BodyHandler<T> handler, String what) {
        return send(ref, "GET", url, headers, null, handler, what, false, Set.of(200, 206));
    }

    /**
     * One request with authentication and retries: {@code ok} are the statuses returned to the
     * caller; 401 is answered once; 404 and other 4xx are errors; 429, 5xx and connection errors
     * are retried. {@code push} asks for a pull-and-push token.
     */
    private <T> HttpResponse<T> send(ImageReference ref, String method, String url, Map<String, String> headers,
            java.util.function.Supplier<HttpRequest.BodyPublisher> body, HttpResponse.BodyHandler<T> handler, String what,
            boolean push, Set<Integer> ok) {
        String where = "registry " + ref.registry() + ", repository " + ref.repository() + ": " + what;
        IOException last = null;
        int lastStatus = 0;
        boolean authTried = false;
        for (int attempt = 1; attempt <= maxAttempts; attempt++) {
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofMinutes(30))
                    .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : body.get());
            headers.forEach(b::header);
            String scope = "repository:" + ref.repository() + (push ? ":pull,push" : ":pull");
            String auth = tokens.get(ref.apiHost() + " " + scope);
            if (auth != null) {
                b.header("Authorization", auth);
            }
            HttpResponse<T> r;
            try {
                r = http().send(b.build(), handler);
            } catch (IOException e) {
                last = e;
                NetworkError kind = NetworkError.of(e);
                if (!kind.transient_) {
                    // A name that does not resolve or a TLS failure will not go away by retrying.
                    throw new RegistryException(where + ": " + kind.explain(ref.apiHost(), e), e);
                }
                sleep(attempt, null);
                continue;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RegistryException(where + ": interrupted", e);
            }
            int s = r.statusCode();
            if (ok.contains(s)) {
                return r;
            }
            String detail = errorDetail(r);
            lastStatus = s;
            if (s == 401 && !authTried) {
                authTried = true;
                String challenge = r.headers().firstValue("WWW-Authenticate").orElse("");
                tokens.put(ref.apiHost() + " " + scope, authorize(ref, challenge, scope, where));
                attempt--; // authenticating is not a failed attempt
                continue;
            }
            if (s == 401 || s == 403) {
                throw new RegistryException(where + ": access denied (HTTP " + s + detail + "); check the name, then log "
                        + "in (docker login " + ref.registry() + ") or pass --creds USER:PASSWORD", s);
            }
            if (s == 404) {
                throw new RegistryException(where + ": not found (HTTP 404" + detail + "); check the repository, tag or "
                        + "digest", s);
            }
            if (s == 405 && push) {
                throw new RegistryException(where + ": the registry does not accept pushes here (HTTP 405" + detail + ")", s);
            }
            if (s == 429 || s >= 500) {
                sleep(attempt, r.headers().firstValue("Retry-After").orElse(null));
                continue;
            }
            throw new RegistryException(where + ": unexpected HTTP " + s + detail, s);
        }
        if (last != null && lastStatus == 0) {
            throw new RegistryException(where + ": " + NetworkError.of(last).explain(ref.apiHost(), last) + " (after "
                    + maxAttempts + " attempts)", last);
        }
        throw new RegistryException(where + ": HTTP " + lastStatus + " after " + maxAttempts + " attempts; the registry "
                + "is busy or failing, try again later", lastStatus);
    }

    /**
     * The distribution spec's error body ({@code {"errors":[{"code":…,"message":…}]}}) as
     * "; CODE: message", or "" when there is none; the response body is consumed.
     */
    static String errorDetail(HttpResponse<?> r) {
        byte[] body;
        try {
            if (r.body() instanceof byte[] b) {
                body = b;
            } else if (r.body() instanceof InputStream in) {
                try (in) {
                    body = in.readNBytes(64 << 10);
                }
            } else {
                return "";
            }
        } catch (IOException e) {
            return "";
        }
        return errorDetail(body);
    }

    static String errorDetail(byte[] body) {
        try {
            JsonNode errors = Holder.JSON.readTree(body).path("errors");
            List<String> parts = new java.util.ArrayList<>();
            for (JsonNode e : errors) {
                String code = e.path("code").asText("");
                String msg = e.path("message").asText("");
                parts.add((code + (code.isEmpty() || msg.isEmpty() ? "" : ": ") + msg).trim());
            }
            parts.removeIf(String::isEmpty);
            return parts.isEmpty() ? "" : "; " + String.join("; ", parts);
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    /** What kind of network failure an exception is, for a message that says what to check. */
    enum NetworkError {
        DNS(false), REFUSED(true), UNREACHABLE(true), TIMEOUT(true), TLS(false), OTHER(true);

        final boolean transient_;

        NetworkError(boolean transient_) {
            this.transient_ = transient_;
        }

        static NetworkError of(Throwable e) {
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (t instanceof java.nio.channels.UnresolvedAddressException || t instanceof java.net.UnknownHostException) {
                    return DNS;
                }
                if (t instanceof javax.net.ssl.SSLException) {
                    return TLS;
                }
                if (t instanceof java.net.NoRouteToHostException) {
                    return UNREACHABLE;
                }
                if (t instanceof java.net.http.HttpTimeoutException || t instanceof java.net.SocketTimeoutException) {
                    return TIMEOUT;
                }
                String m = String.valueOf(t.getMessage());
                if (m.contains("Connection refused")) {
                    return REFUSED;
                }
                if (m.contains("No route to host") || m.contains("Network is unreachable")) {
                    return UNREACHABLE;
                }
            }
            return e instanceof java.net.ConnectException ? REFUSED : OTHER;
        }

        String explain(String host, Throwable e) {
            return switch (this) {
                case DNS -> "cannot resolve " + host.replaceFirst(":[0-9]+$", "") + " (DNS); check the registry name for "
                        + "typos and that this machine can resolve names (offline?)";
                case REFUSED -> host + " refused the connection; check the port and that the registry is running there";
                case UNREACHABLE -> "no route to " + host + "; check the network connection (offline?) or proxy";
                case TIMEOUT -> host + " did not answer in time; check the network, a firewall or proxy";
                case TLS -> "TLS with " + host + " failed (" + e.getMessage() + "); for a registry that serves plain HTTP "
                        + "use --insecure-registry " + host + ", else check its certificate";
                case OTHER -> "network error talking to " + host + " (" + e.getClass().getSimpleName()
                        + (e.getMessage() == null ? "" : ": " + e.getMessage()) + "); check the network";
            };
        }
    }

    private void sleep(int attempt, String retryAfter) {
        long ms = backoffMillis * (1L << Math.min(attempt - 1, 6));
        if (retryAfter != null && retryAfter.matches("\\d+")) {
            ms = Math.min(Long.parseLong(retryAfter) * 1000, 60_000);
        }
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Answers a 401 challenge: a bearer token from the realm, or basic credentials. */
    private String authorize(ImageReference ref, String challenge, String scope, String where) {
        Credentials.Login login = credentials.forHost(ref.apiHost());
        if (challenge.regionMatches(true, 0, "Basic", 0, 5)) {
            if (login == null) {
                throw new RegistryException(where + ": the registry wants a login (HTTP 401); run docker login "
                        + ref.registry() + " or pass --creds USER:PASSWORD", 401);
            }
            return "Basic " + login.basic();
        }
        if (!challenge.regionMatches(true, 0, "Bearer", 0, 6)) {
            throw new RegistryException(where + ": HTTP 401 with an authentication scheme kiln does not know: " + challenge, 401);
        }
        Map<String, String> p = new HashMap<>();
        Matcher m = PARAM.matcher(challenge);
        while (m.find()) {
            p.put(m.group(1), m.group(2));
        }
        String realm = p.get("realm");
        if (realm == null) {
            throw new RegistryException(where + ": bearer challenge without a realm: " + challenge, 401);
        }
        String url = realm + (realm.contains("?") ? "&" : "?")
                + (p.containsKey("service") ? "service=" + enc(p.get("service")) + "&" : "")
                + "scope=" + enc(p.getOrDefault("scope", scope));
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60)).GET();
        if (login != null && !login.user().equals("<token>")) {
            b.header("Authorization", "Basic " + login.basic());
        }
        try {
            HttpResponse<byte[]> r = http().send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() == 401 || r.statusCode() == 403) {
                throw new RegistryException(where + ": the token service refused (HTTP " + r.statusCode()
                        + errorDetail(r.body()) + "); log in "
                        + "(docker login " + ref.registry() + ") or pass --creds USER:PASSWORD", r.statusCode());
            }
            if (r.statusCode() != 200) {
                throw new RegistryException(where + ": token service " + realm + " answered HTTP " + r.statusCode()
                        + errorDetail(r.body()),
                        r.statusCode());
            }
            JsonNode j = Holder.JSON.readTree(r.body());
            String token = j.path("token").asText(j.path("access_token").asText(""));
            if (token.isEmpty()) {
                throw new RegistryException(where + ": token service " + realm + " returned no token", 401);
            }
            return "Bearer " + token;
        } catch (IOException e) {
            throw new RegistryException(where + ": token service " + realm + ": "
                    + NetworkError.of(e).explain(URI.create(realm).getAuthority(), e), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RegistryException(where + ": interrupted", e);
        }
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    // ------------------------------------------------------------------ push

    /** Whether the repository has the blob (HEAD). */
    public boolean hasBlob(ImageReference ref, String digest) {
        HttpResponse<Void> r = send(ref, "HEAD", base(ref) + "/blobs/" + digest, Map.of(), null,
                HttpResponse.BodyHandlers.discarding(), "blob " + digest, true, Set.of(200, 404));
        return r.statusCode() == 200;
    }

    /**
     * Asks the registry to link a blob from another repository of the same registry (no upload);
     * false when it would not (the caller then uploads).
     */
    public boolean mountBlob(ImageReference ref, String digest, String fromRepository) {
        HttpResponse<byte[]> r = send(ref, "POST", base(ref) + "/blobs/uploads/?mount=" + enc(digest) + "&from="
                + enc(fromRepository), Map.of(), null, HttpResponse.BodyHandlers.ofByteArray(), "mount " + digest, true,
                Set.of(201, 202));
        if (r.statusCode() == 202) {
            // An upload session was opened instead; leave it (registries expire them).
            return false;
        }
        return true;
    }

    /** Uploads larger than this go in chunks (PATCH), smaller ones in one PUT. */
    static long chunkSize = 32L << 20;

    /**
     * Uploads a blob from a file: a session (POST), then the content in one PUT or in PATCH
     * chunks with Content-Range, closed by a PUT with the digest, as the distribution spec has it.
     */
    public void uploadBlob(ImageReference ref, String digest, java.nio.file.Path file) throws IOException {
        long size = java.nio.file.Files.size(file);
        HttpResponse<byte[]> start = send(ref, "POST", base(ref) + "/blobs/uploads/", Map.of(), null,
                HttpResponse.BodyHandlers.ofByteArray(), "upload " + digest, true, Set.of(202));
        String location = location(ref, start);
        if (size > chunkSize) {
            long off = 0;
            while (off < size) {
                long len = Math.min(chunkSize, size - off);
                long from = off;
                HttpResponse<byte[]> r = send(ref, "PATCH", location, Map.of("Content-Type", "application/octet-stream",
                        "Content-Range", from + "-" + (from + len - 1)), () -> slice(file, from, len),
                        HttpResponse.BodyHandlers.ofByteArray(), "upload " + digest + " (bytes " + from + "-)", true,
                        Set.of(202));
                location = location(ref, r);
                off += len;
            }
            send(ref, "PUT", withDigest(location, digest), Map.of("Content-Type", "application/octet-stream"), null,
                    HttpResponse.BodyHandlers.ofByteArray(), "upload " + digest, true, Set.of(201));
        } else {
            send(ref, "PUT", withDigest(location, digest), Map.of("Content-Type", "application/octet-stream"),
                    () -> {
                        try {
                            return HttpRequest.BodyPublishers.ofFile(file);
                        } catch (java.io.FileNotFoundException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    }, HttpResponse.BodyHandlers.ofByteArray(), "upload " + digest, true, Set.of(201));
        }
    }

    /** Uploads small bytes (a config, the empty descriptor's "{}"). */
    public void uploadBlob(ImageReference ref, String digest, byte[] bytes) {
        HttpResponse<byte[]> start = send(ref, "POST", base(ref) + "/blobs/uploads/", Map.of(), null,
                HttpResponse.BodyHandlers.ofByteArray(), "upload " + digest, true, Set.of(202));
        send(ref, "PUT", withDigest(location(ref, start), digest), Map.of("Content-Type", "application/octet-stream"),
                () -> HttpRequest.BodyPublishers.ofByteArray(bytes), HttpResponse.BodyHandlers.ofByteArray(),
                "upload " + digest, true, Set.of(201));
    }

    /** Puts a manifest under a tag (or its digest); returns the digest the registry gives it. */
    public String putManifest(ImageReference ref, String reference, byte[] manifest, String mediaType) {
        HttpResponse<byte[]> r = send(ref, "PUT", base(ref) + "/manifests/" + reference, Map.of("Content-Type", mediaType),
                () -> HttpRequest.BodyPublishers.ofByteArray(manifest), HttpResponse.BodyHandlers.ofByteArray(),
                "manifest " + reference, true, Set.of(201));
        return r.headers().firstValue("Docker-Content-Digest").orElse(null);
    }

    private static HttpRequest.BodyPublisher slice(java.nio.file.Path file, long from, long len) {
        return HttpRequest.BodyPublishers.fromPublisher(HttpRequest.BodyPublishers.ofInputStream(() -> {
            try {
                java.io.InputStream in = java.nio.file.Files.newInputStream(file);
                in.skipNBytes(from);
                return new java.io.FilterInputStream(in) {
                    long left = len;

                    @Override
                    public int read() throws IOException {
                        if (left <= 0) {
                            return -1;
                        }
                        int b = super.read();
                        if (b >= 0) {
                            left--;
                        }
                        return b;
                    }

                    @Override
                    public int read(byte[] buf, int off, int n) throws IOException {
                        if (left <= 0) {
                            return -1;
                        }
                        int got = super.read(buf, off, (int) Math.min(n, left));
                        if (got > 0) {
                            left -= got;
                        }
                        return got;
                    }
                };
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }), len);
    }

    private String location(ImageReference ref, HttpResponse<?> r) {
        String loc = r.headers().firstValue("Location").orElseThrow(() -> new RegistryException("registry "
                + ref.registry() + ": upload answered without a Location header", r.statusCode()));
        return URI.create(base(ref) + "/").resolve(loc).toString();
    }

    private static String withDigest(String location, String digest) {
        return location + (location.contains("?") ? "&" : "?") + "digest=" + enc(digest);
    }

    static List<String> manifestTypes() {
        return List.of(ACCEPT.split(", "));
    }
}
