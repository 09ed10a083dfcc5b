package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.image.registry.BlobCache;
import dev.kiln.image.registry.Credentials;
import dev.kiln.image.registry.ImageReference;
import dev.kiln.image.registry.RegistryClient;
import dev.kiln.image.registry.RegistryException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pulling from an in-process registry: auth, failures, digests, resume and the cache. */
class RegistrySourceTest {
    @TempDir Path tmp;
    Path layout;
    Path cache;

    @BeforeEach
    void layout() throws Exception {
        layout = Files.createDirectories(tmp.resolve("layout"));
        String desc = OciFixture.image(layout, OciSourceTest.layers(), OciFixture.Codec.GZIP, "linux", "amd64");
        OciFixture.index(layout, List.of(OciFixture.tagged(desc, "1")));
        cache = tmp.resolve("cache");
    }

    private RegistrySource source(FakeRegistry reg, String creds, RegistrySource.Pull pull) {
        RegistryClient client = new RegistryClient(new Credentials(creds, null), Set.of(), 5, 10);
        return new RegistrySource(ImageReference.parse(reg.host() + "/nex/base:1"), OciSource.Platform.parse("linux/amd64"),
                client, new BlobCache(cache), pull, null);
    }

    private Path build(Source s, String name) throws Exception {
        Path img = tmp.resolve(name);
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).build())) {
            s.applyTo(w);
        }
        return img;
    }

    /** The digest of the image's largest layer. */
    private String largestLayer() throws Exception {
        var om = new com.fasterxml.jackson.databind.ObjectMapper();
        String md = om.readTree(layout.resolve("index.json").toFile()).path("manifests").get(0).path("digest").asText();
        var layers = om.readTree(layout.resolve(OciSource.blobPath(md)).toFile()).path("layers");
        String best = null;
        long size = -1;
        for (var l : layers) {
            if (l.path("size").asLong() > size) {
                size = l.path("size").asLong();
                best = l.path("digest").asText();
            }
        }
        return best.substring(7);
    }

    @Test
    void bearerTokenFlowAndSameImageAsTheLayout() throws Exception {
        String host;
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.BEARER)) {
            host = reg.host();
            Path pulled = build(source(reg, null, RegistrySource.Pull.MISSING), "pulled.ext4");
            Path local = build(Sources.parse("oci:" + layout + ":1"), "local.ext4");
            assertArrayEquals(Files.readAllBytes(local), Files.readAllBytes(pulled));
            assertEquals(OciSourceTest.expected(), OciSourceTest.tree(pulled));
            assertTrue(reg.tokenRequests.get() >= 1);
            // Cached now: --pull never works offline, and --pull missing downloads nothing again.
            int blobs = reg.blobRequests.get();
            build(source(reg, null, RegistrySource.Pull.MISSING), "again.ext4");
            assertEquals(blobs, reg.blobRequests.get());
        }
        // The registry is gone: --pull never builds from the cache alone.
        RegistrySource offline = new RegistrySource(ImageReference.parse(host + "/nex/base:1"),
                OciSource.Platform.parse("linux/amd64"), new RegistryClient(new Credentials(null, null), Set.of(), 5, 10),
                new BlobCache(cache), RegistrySource.Pull.NEVER, null);
        assertEquals(OciSourceTest.expected(), OciSourceTest.tree(build(offline, "offline.ext4")));
    }

    @Test
    void tokenServiceGetsTheCredentialsAndRefusesWrongOnes() throws Exception {
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.BEARER)) {
            assertEquals(OciSourceTest.expected(), OciSourceTest.tree(build(source(reg, "kiln:secret",
                    RegistrySource.Pull.ALWAYS), "t.ext4")));
            RegistryException e = assertThrows(RegistryException.class,
                    () -> build(source(reg, "kiln:wrong", RegistrySource.Pull.ALWAYS), "w.ext4"));
            assertEquals(401, e.status());
            assertTrue(e.getMessage().contains("token service refused"), e.getMessage());
        }
    }

    @Test
    void basicAuthWithCredentials() throws Exception {
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.BASIC)) {
            assertEquals(OciSourceTest.expected(), OciSourceTest.tree(build(source(reg, "kiln:secret",
                    RegistrySource.Pull.ALWAYS), "b.ext4")));
            RegistryException e = assertThrows(RegistryException.class,
                    () -> build(source(reg, null, RegistrySource.Pull.ALWAYS), "c.ext4"));
            assertEquals(401, e.status());
            assertTrue(e.getMessage().contains("registry " + reg.host()) && e.getMessage().contains("--creds"), e.getMessage());
        }
    }

    @Test
    void statusErrorsNameRegistryRepositoryAndWhatFailed() throws Exception {
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.NONE)) {
            reg.failNext("/manifests/", 403);
            RegistryException e = assertThrows(RegistryException.class,
                    () -> build(source(reg, null, RegistrySource.Pull.ALWAYS), "a.ext4"));
            assertEquals(403, e.status());
            assertTrue(e.getMessage().contains("repository nex/base: manifest 1: access denied"), e.getMessage());
            RegistryClient client = new RegistryClient(new Credentials(null, null), Set.of(), 5, 10);
            RegistrySource missing = new RegistrySource(ImageReference.parse(reg.host() + "/nex/nothing:1"),
                    OciSource.Platform.host(), client, new BlobCache(cache), RegistrySource.Pull.ALWAYS, null);
            e = assertThrows(RegistryException.class, () -> build(missing, "m.ext4"));
            assertEquals(404, e.status());
            assertTrue(e.getMessage().contains("not found"), e.getMessage());
        }
    }

    @Test
    void retriesOn429And5xx() throws Exception {
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.NONE)) {
            reg.failNext("/manifests/", 429, 500, 503);
            reg.failNext("/blobs/", 502);
            assertEquals(OciSourceTest.expected(), OciSourceTest.tree(build(source(reg, null, RegistrySource.Pull.ALWAYS),
                    "r.ext4")));
        }
    }

    @Test
    void schemaOneManifestsAreRefused() throws Exception {
        byte[] v1 = "{\"schemaVersion\":1,\"name\":\"nex/base\",\"tag\":\"old\",\"fsLayers\":[]}".getBytes();
        String d = OciFixture.blob(layout, v1);
        OciFixture.index(layout, List.of(OciFixture.tagged("{\"mediaType\":\"application/vnd.docker.distribution."
                + "manifest.v1+prettyjws\",\"digest\":\"" + d + "\",\"size\":" + v1.length, "1")));
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.NONE)) {
            RegistryException e = assertThrows(RegistryException.class,
                    () -> build(source(reg, null, RegistrySource.Pull.ALWAYS), "v1.ext4"));
            assertTrue(e.getMessage().contains("schema 1 manifests are not supported"), e.getMessage());
        }
    }

    @Test
    void persistentServerErrorsGiveUp() throws Exception {
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.NONE)) {
            reg.failNext("/manifests/", 500, 500, 500, 500, 500, 500);
            RegistryException e = assertThrows(RegistryException.class,
                    () -> build(source(reg, null, RegistrySource.Pull.ALWAYS), "a.ext4"));
            assertTrue(e.getMessage().contains("HTTP 500 after"), e.getMessage());
        }
    }

    @Test
    void corruptDownloadIsRefused() throws Exception {
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.NONE)) {
            reg.corrupt.add("/blobs/");
            RegistryException e = assertThrows(RegistryException.class,
                    () -> build(source(reg, null, RegistrySource.Pull.ALWAYS), "a.ext4"));
            assertTrue(e.getMessage().contains("served corrupt data"), e.getMessage());
        }
    }

    @Test
    void droppedConnectionResumesWithARange() throws Exception {
        String bigLayer = largestLayer();
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.NONE)) {
            reg.dropAfter.put(bigLayer, 100);
            assertEquals(OciSourceTest.expected(), OciSourceTest.tree(build(source(reg, null, RegistrySource.Pull.ALWAYS),
                    "d.ext4")));
            assertTrue(reg.ranges.contains("bytes=100-"), "resumed with a range: " + reg.ranges);
        }
    }

    @Test
    void corruptedCacheEntryIsRemovedAndFetchedAgain() throws Exception {
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.NONE)) {
            build(source(reg, null, RegistrySource.Pull.MISSING), "first.ext4");
            Path blob = cache.resolve("blobs/sha256/" + largestLayer());
            byte[] b = Files.readAllBytes(blob);
            b[3] ^= 0x40;
            Files.write(blob, b);
            int before = reg.blobRequests.get();
            assertEquals(OciSourceTest.expected(), OciSourceTest.tree(build(source(reg, null, RegistrySource.Pull.MISSING),
                    "second.ext4")));
            assertEquals(before + 1, reg.blobRequests.get());
            assertEquals("sha256:" + blob.getFileName(), BlobCache.sha256(blob));
        }
    }

    @Test
    void pullSavesAnOciLayoutThatBuildsTheSameImage() throws Exception {
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.BEARER)) {
            Path saved = tmp.resolve("saved");
            source(reg, null, RegistrySource.Pull.MISSING).saveLayout(saved);
            Path a = build(Sources.parse("oci:" + saved + ":1"), "saved.ext4");
            Path b = build(Sources.parse("oci:" + layout + ":1"), "orig.ext4");
            assertArrayEquals(Files.readAllBytes(b), Files.readAllBytes(a));
        }
    }
}
