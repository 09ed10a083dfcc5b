package dev.kiln.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An in-process registry (JDK HttpServer on loopback) serving one OCI layout, with the
 * distribution API's token flow or basic auth, and failures on demand.
 */
final class FakeRegistry implements AutoCloseable {
    enum Auth { NONE, BEARER, BASIC }

    private final HttpServer server;
    private final Path layout;
    private final Auth auth;
    final Map<String, Deque<Integer>> failures = new ConcurrentHashMap<>();
    /** Paths (by substring) whose next response is cut after this many bytes. */
    final Map<String, Integer> dropAfter = new ConcurrentHashMap<>();
    /** Paths (by substring) whose content is served wrong. */
    final List<String> corrupt = new ArrayList<>();
    final AtomicInteger tokenRequests = new AtomicInteger();
    final AtomicInteger blobRequests = new AtomicInteger();
    final List<String> ranges = new ArrayList<>();

    FakeRegistry(Path layout, Auth auth) throws IOException {
        this.layout = layout;
        this.auth = auth;
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/token", this::token);
        server.createContext("/v2/", this::v2);
        server.setExecutor(java.util.concurrent.Executors.newFixedThreadPool(4));
        server.start();
    }

    String host() {
        return "127.0.0.1:" + server.getAddress().getPort();
    }

    void failNext(String pathPart, int... statuses) {
        Deque<Integer> q = failures.computeIfAbsent(pathPart, k -> new ArrayDeque<>());
        for (int s : statuses) {
            q.add(s);
        }
    }

    private void token(HttpExchange x) throws IOException {
        tokenRequests.incrementAndGet();
        String a = x.getRequestHeaders().getFirst("Authorization");
        if (x.getRequestURI().getRawQuery() == null || !x.getRequestURI().getRawQuery().contains("scope=repository%3A")) {
            send(x, 400, "{}".getBytes(), "application/json");
            return;
        }
        if (a != null && !a.equals("Basic " + Base64.getEncoder().encodeToString("kiln:secret".getBytes()))) {
            send(x, 401, "{}".getBytes(), "application/json");
            return;
        }
        send(x, 200, "{\"token\":\"t0k3n\"}".getBytes(), "application/json");
    }

    private boolean authorized(HttpExchange x) throws IOException {
        String a = x.getRequestHeaders().getFirst("Authorization");
        switch (auth) {
            case BEARER -> {
                if (!"Bearer t0k3n".equals(a)) {
                    x.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"http://" + host()
                            + "/token\",service=\"fake\",scope=\"repository:nex/base:pull\"");
                    send(x, 401, "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}".getBytes(), "application/json");
                    return false;
                }
            }
            case BASIC -> {
                if (!("Basic " + Base64.getEncoder().encodeToString("kiln:secret".getBytes())).equals(a)) {
                    x.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"fake\"");
                    send(x, 401, "{}".getBytes(), "application/json");
                    return false;
                }
            }
            default -> { }
        }
        return true;
    }

    private void v2(HttpExchange x) throws IOException {
        String path = x.getRequestURI().getPath();
        if (!authorized(x)) {
            return;
        }
        for (Map.Entry<String, Deque<Integer>> f : failures.entrySet()) {
            if (path.contains(f.getKey()) && !f.getValue().isEmpty()) {
                int s = f.getValue().poll();
                if (s == 429) {
                    x.getResponseHeaders().add("Retry-After", "0");
                }
                send(x, s, "{}".getBytes(), "application/json");
                return;
            }
        }
        if (!path.startsWith("/v2/nex/base/")) {
            send(x, 404, "{\"errors\":[{\"code\":\"NAME_UNKNOWN\"}]}".getBytes(), "application/json");
            return;
        }
        String rest = path.substring("/v2/nex/base/".length());
        if (rest.startsWith("manifests/")) {
            String ref = rest.substring("manifests/".length());
            String digest = ref;
            if (!ref.startsWith("sha256:")) {
                digest = null;
                JsonNode idx = new ObjectMapper().readTree(layout.resolve("index.json").toFile());
                for (JsonNode m : idx.path("manifests")) {
                    if (ref.equals(m.path("annotations").path("org.opencontainers.image.ref.name").asText())) {
                        digest = m.path("digest").asText();
                    }
                }
                if (digest == null) {
                    send(x, 404, "{}".getBytes(), "application/json");
                    return;
                }
            }
            Path p = layout.resolve("blobs/sha256/" + digest.substring(7));
            if (!Files.exists(p)) {
                send(x, 404, "{}".getBytes(), "application/json");
                return;
            }
            byte[] b = Files.readAllBytes(p);
            String type = new ObjectMapper().readTree(b).path("mediaType").asText("application/vnd.oci.image.manifest.v1+json");
            send(x, 200, b, type);
            return;
        }
        if (rest.startsWith("blobs/")) {
            blobRequests.incrementAndGet();
            String digest = rest.substring("blobs/".length());
            Path p = layout.resolve("blobs/sha256/" + digest.substring(7));
            if (!Files.exists(p)) {
                send(x, 404, "{}".getBytes(), "application/json");
                return;
            }
            byte[] b = Files.readAllBytes(p);
            if (corrupt.stream().anyMatch(path::contains)) {
                b = b.clone();
                b[b.length / 2] ^= 1;
            }
            String range = x.getRequestHeaders().getFirst("Range");
            int from = 0;
            if (range != null) {
                synchronized (ranges) {
                    ranges.add(range);
                }
                from = Integer.parseInt(range.replaceAll("bytes=(\\d+)-.*", "$1"));
            }
            byte[] body = java.util.Arrays.copyOfRange(b, from, b.length);
            Integer cut = null;
            for (Map.Entry<String, Integer> d : dropAfter.entrySet()) {
                if (path.contains(d.getKey())) {
                    cut = d.getValue();
                    dropAfter.remove(d.getKey());
                }
            }
            x.getResponseHeaders().add("Content-Type", "application/octet-stream");
            x.sendResponseHeaders(from > 0 ? 206 : 200, body.length);
            try (OutputStream o = x.getResponseBody()) {
                if (cut != null) {
                    o.write(body, 0, Math.min(cut, body.length));
                    o.flush();
                    x.close(); // drop the connection mid-body
                    return;
                }
                o.write(body);
            }
            return;
        }
        send(x, 404, "{}".getBytes(), "application/json");
    }

    private static void send(HttpExchange x, int status, byte[] body, String type) throws IOException {
        x.getResponseHeaders().add("Content-Type", type);
        x.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream o = x.getResponseBody()) {
                o.write(body);
            }
        }
        x.close();
    }

    @Override
    public void close() {
        server.stop(0);
    }

    static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
