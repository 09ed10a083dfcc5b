package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.ExternalTools;
import dev.kiln.image.registry.BlobCache;
import dev.kiln.image.registry.RootfsArtifact;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kiln push and kiln fetch against Debian's docker-registry on loopback with htpasswd auth: CI
 * publishes, a node fetches by digest into its own cache, and every way the bytes could be wrong
 * is refused with nothing left behind. Plus plain HTTP(S) URLs with a .sha256 beside the image.
 */
class PushFetchIT {
    @TempDir Path tmp;
    private TestRegistry registry;
    private String host;
    private Path image;

    @BeforeEach
    void start() throws Exception {
        registry = new TestRegistry(tmp, true);
        host = registry.host;
        Path src = Files.createDirectories(tmp.resolve("src/etc"));
        Files.writeString(src.resolve("hostname"), "nex-node\n");
        byte[] data = new byte[3 << 20];
        new java.util.Random(14).nextBytes(data);
        Files.write(src.resolve("payload"), data);
        image = tmp.resolve("rootfs.ext4");
        var b = CliRunner.run("build", "--image", "dir:" + src.getParent(), "-o", image.toString(), "--size", "32M", "-q");
        assertEquals(0, b.exit(), b.err());
    }

    @AfterEach
    void stop() throws Exception {
        if (registry != null) {
            registry.close();
        }
    }

    private CliRunner.Run kiln(String... args) {
        List<String> a = new ArrayList<>(List.of(args));
        a.addAll(List.of("--creds", "kiln:secret"));
        return CliRunner.run(a.toArray(String[]::new));
    }

    private String push(String ref, String... extra) {
        List<String> a = new ArrayList<>(List.of("push", image.toString(), host + "/" + ref, "--cache",
                tmp.resolve("ci-cache").toString()));
        a.addAll(List.of(extra));
        var r = kiln(a.toArray(String[]::new));
        assertEquals(0, r.exit(), r.err());
        return r.out().trim();
    }

    @Test
    void ciPushesAndANodeFetchesTheSameBytes() throws Exception {
        String digest = push("nex/rootfs:1");
        assertTrue(digest.matches("sha256:[0-9a-f]{64}"), digest);

        // What a consumer sees, read with skopeo.
        ExternalTools.require("skopeo");
        var raw = ExternalTools.run(List.of("skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", "kiln:secret",
                "docker://" + host + "/nex/rootfs:1"));
        assertEquals(0, raw.exit(), raw.out());
        JsonNode m = new ObjectMapper().readTree(raw.out());
        assertEquals(RootfsArtifact.MANIFEST_TYPE, m.path("mediaType").asText());
        assertEquals("application/vnd.kiln.rootfs.v1", m.path("artifactType").asText());
        assertEquals("application/vnd.oci.empty.v1+json", m.path("config").path("mediaType").asText());
        assertEquals("application/vnd.kiln.rootfs.ext4.v1+gzip", m.path("layers").get(0).path("mediaType").asText());
        JsonNode a = m.path("annotations");
        assertEquals(BlobCache.sha256(image), a.path("dev.kiln.rootfs.sha256").asText());
        assertEquals(Long.toString(Files.size(image)), a.path("dev.kiln.rootfs.size").asText());
        assertEquals("4096", a.path("dev.kiln.rootfs.block-size").asText());
        assertTrue(a.path("dev.kiln.rootfs.features").asText().contains("metadata_csum"));
        assertEquals("1970-01-01T00:00:00Z", a.path("org.opencontainers.image.created").asText());
        assertEquals(digest, BlobCache.sha256(raw.out().getBytes(java.nio.charset.StandardCharsets.UTF_8)));

        // A second push uploads no blob.
        var again = kiln("push", image.toString(), host + "/nex/rootfs:1", "--json");
        assertEquals(0, again.exit(), again.err());
        JsonNode j = new ObjectMapper().readTree(again.out());
        assertEquals(0, j.path("uploaded").asInt(), again.out());
        assertEquals(digest, j.path("digest").asText());

        // Another node: its own cache and output, pinned by digest.
        Path node = Files.createDirectories(tmp.resolve("node"));
        var f = kiln("fetch", host + "/nex/rootfs:1", "--digest", digest, "-o", node.resolve("rootfs.ext4").toString(),
                "--cache", node.resolve("cache").toString());
        assertEquals(0, f.exit(), f.err());
        assertArrayEquals(Files.readAllBytes(image), Files.readAllBytes(node.resolve("rootfs.ext4")));
        ExternalTools.assertFsckClean(node.resolve("rootfs.ext4"));

        // Again: a cache hit, no download (the registry is gone).
        registry.close();
        var hit = kiln("fetch", host + "/nex/rootfs@" + digest, "-o", node.resolve("again.ext4").toString(), "--cache",
                node.resolve("cache").toString(), "--json");
        assertEquals(0, hit.exit(), hit.err());
        assertFalse(new ObjectMapper().readTree(hit.out()).path("downloaded").asBoolean(), hit.out());
        assertArrayEquals(Files.readAllBytes(image), Files.readAllBytes(node.resolve("again.ext4")));
    }

    @Test
    void anInterruptedFetchResumes() throws Exception {
        push("nex/rootfs:zstd", "--compress", "zstd");
        Path node = Files.createDirectories(tmp.resolve("node"));
        var info = kiln("inspect", host + "/nex/rootfs:zstd", "--json", "--cache", node.resolve("cache").toString());
        assertEquals(0, info.exit(), info.err());
        JsonNode layer = new ObjectMapper().readTree(info.out()).path("layer");
        assertEquals("application/vnd.kiln.rootfs.ext4.v1+zstd", layer.path("mediaType").asText());
        String blob = layer.path("digest").asText();
        try (Stream<Path> s = Files.walk(node.resolve("cache"))) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().equals(blob.substring(7))),
                    "inspect downloads no blob");
        }
        // The first half of the layer, as an interrupted download leaves it.
        Path stored = tmp.resolve("data/docker/registry/v2/blobs/sha256/" + blob.substring(7, 9) + "/" + blob.substring(7)
                + "/data");
        byte[] all = Files.readAllBytes(stored);
        Path partial = new BlobCache(node.resolve("cache")).path(blob);
        Files.createDirectories(partial.getParent());
        Files.write(partial.resolveSibling(partial.getFileName() + ".partial"), java.util.Arrays.copyOf(all, all.length / 2));
        var f = kiln("fetch", host + "/nex/rootfs:zstd", "-o", node.resolve("rootfs.ext4").toString(), "--cache",
                node.resolve("cache").toString());
        assertEquals(0, f.exit(), f.err());
        assertTrue(f.err().contains("resuming the download of " + blob + " at " + all.length / 2 + " bytes"), f.err());
        assertArrayEquals(Files.readAllBytes(image), Files.readAllBytes(node.resolve("rootfs.ext4")));
    }

    @Test
    void tamperedBlobsAndWrongDigestsAreRefusedWithNothingLeft() throws Exception {
        String digest = push("nex/rootfs:1");
        Path node = Files.createDirectories(tmp.resolve("node"));
        var wrong = kiln("fetch", host + "/nex/rootfs:1", "--digest", "sha256:" + "0".repeat(64), "-o",
                node.resolve("w.ext4").toString(), "--cache", node.resolve("cache").toString());
        assertEquals(3, wrong.exit(), wrong.err());
        assertTrue(wrong.err().contains("not the pinned --digest"), wrong.err());

        String blob = new ObjectMapper().readTree(kiln("inspect", host + "/nex/rootfs@" + digest, "--json", "--cache",
                node.resolve("cache").toString()).out()).path("layer").path("digest").asText();
        Path stored = tmp.resolve("data/docker/registry/v2/blobs/sha256/" + blob.substring(7, 9) + "/" + blob.substring(7)
                + "/data");
        byte[] b = Files.readAllBytes(stored);
        b[b.length / 2] ^= 0x40;
        Files.write(stored, b);
        var tampered = kiln("fetch", host + "/nex/rootfs:1", "-o", node.resolve("t.ext4").toString(), "--cache",
                node.resolve("cache2").toString());
        assertTrue(tampered.exit() == 4 || tampered.exit() == 3, tampered.err());
        assertTrue(tampered.err().contains("corrupt"), tampered.err());
        try (Stream<Path> s = Files.list(node)) {
            assertEquals(List.of(), s.filter(p -> !Files.isDirectory(p)).toList(), "no output file");
        }
    }

    @Test
    void buildPushPublishesOnlyImagesThatPassTheirChecksAndTheArtifactIsABase() throws Exception {
        Path out = tmp.resolve("pushed.ext4");
        var ok = kiln("build", "--image", "scratch", "--agent", Path.of("../examples/agent.sh").toAbsolutePath().toString(),
                "--agent-init", "pid1", "--host-libs", "-o", out.toString(), "-q", "--push", host + "/nex/built:1",
                "--cache", tmp.resolve("c").toString());
        assertEquals(0, ok.exit(), ok.err());
        String digest = ok.out().trim();
        var d = kiln("inspect", host + "/nex/built:1", "--json", "--cache", tmp.resolve("c").toString());
        JsonNode a = new ObjectMapper().readTree(d.out()).path("annotations");
        assertEquals("scratch", a.path("dev.kiln.rootfs.source").asText(), d.out());
        assertEquals(digest, new ObjectMapper().readTree(d.out()).path("digest").asText());

        var refused = kiln("build", "--image", "scratch", "--agent", Path.of("/bin/true").toRealPath().toString(),
                "--agent-init", "pid1", "-o", tmp.resolve("bad.ext4").toString(), "-q", "--push", host + "/nex/bad:1",
                "--cache", tmp.resolve("c").toString());
        assertEquals(3, refused.exit(), refused.err());
        var none = kiln("inspect", host + "/nex/bad:1", "--cache", tmp.resolve("c").toString());
        assertEquals(4, none.exit(), "nothing was pushed: " + none.err());

        // The published artifact as a base: the ext4 inside becomes the source.
        Path rebuilt = tmp.resolve("rebuilt.ext4");
        var r = kiln("build", "--image", host + "/nex/built:1", "-o", rebuilt.toString(), "-q", "--no-boot-check",
                "--cache", tmp.resolve("c2").toString());
        assertEquals(0, r.exit(), r.err());
        try (Ext4Reader x = Ext4Reader.open(rebuilt); Ext4Reader y = Ext4Reader.open(out)) {
            SameTree.assertSameMetadata(y, x);
            assertArrayEquals(y.open("/usr/local/bin/agent").readAllBytes(), x.open("/usr/local/bin/agent").readAllBytes());
        }
    }

    @Test
    void aPlainUrlWithItsSha256BesideIt() throws Exception {
        Path pub = Files.createDirectories(tmp.resolve("www"));
        var b = CliRunner.run("build", "--image", "ext4:" + image, "-o", pub.resolve("rootfs.ext4.gz").toString(), "-q");
        assertEquals(0, b.exit(), b.err());
        List<String> ranges = new CopyOnWriteArrayList<>();
        HttpServer http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        http.createContext("/", x -> {
            Path f = pub.resolve(x.getRequestURI().getPath().substring(1));
            if (!Files.isRegularFile(f)) {
                x.sendResponseHeaders(404, -1);
                x.close();
                return;
            }
            byte[] all = Files.readAllBytes(f);
            String range = x.getRequestHeaders().getFirst("Range");
            int from = 0;
            if (range != null) {
                ranges.add(range);
                from = Integer.parseInt(range.replaceAll("bytes=(\\d+)-", "$1"));
                x.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + (all.length - 1) + "/" + all.length);
            }
            x.sendResponseHeaders(range != null ? 206 : 200, all.length - from);
            try (OutputStream o = x.getResponseBody()) {
                o.write(all, from, all.length - from);
            }
        });
        http.start();
        try {
            String url = "http://127.0.0.1:" + http.getAddress().getPort() + "/rootfs.ext4.gz";
            Path node = Files.createDirectories(tmp.resolve("node"));
            // Half of it arrived before the connection dropped.
            String sha = "sha256:" + Files.readString(pub.resolve("rootfs.ext4.gz.sha256")).split("\\s+")[0];
            Path cached = new BlobCache(node.resolve("cache")).path(sha);
            Files.createDirectories(cached.getParent());
            byte[] gz = Files.readAllBytes(pub.resolve("rootfs.ext4.gz"));
            Files.write(cached.resolveSibling(cached.getFileName() + ".partial"), java.util.Arrays.copyOf(gz, gz.length / 2));
            var f = CliRunner.run("fetch", url, "-o", node.resolve("rootfs.ext4").toString(), "--cache",
                    node.resolve("cache").toString());
            assertEquals(0, f.exit(), f.err());
            assertEquals(List.of("bytes=" + gz.length / 2 + "-"), ranges, "resumed with a range request");
            byte[] published;
            try (var in = new java.util.zip.GZIPInputStream(Files.newInputStream(pub.resolve("rootfs.ext4.gz")))) {
                published = in.readAllBytes();
            }
            assertArrayEquals(published, Files.readAllBytes(node.resolve("rootfs.ext4")));

            Files.writeString(pub.resolve("rootfs.ext4.gz.sha256"), "0".repeat(64) + "  rootfs.ext4.gz\n");
            var bad = CliRunner.run("fetch", url, "-o", node.resolve("bad.ext4").toString(), "--cache",
                    node.resolve("cache2").toString());
            assertEquals(3, bad.exit(), bad.err());
            assertTrue(bad.err().contains("its .sha256 says"), bad.err());
            assertFalse(Files.exists(node.resolve("bad.ext4")));
        } finally {
            http.stop(0);
        }
    }
}
