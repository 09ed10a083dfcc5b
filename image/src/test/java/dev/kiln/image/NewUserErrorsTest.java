package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.image.registry.BlobCache;
import dev.kiln.image.registry.Credentials;
import dev.kiln.image.registry.ImageReference;
import dev.kiln.image.registry.RegistryClient;
import dev.kiln.image.registry.RegistryException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Defects a new user met: references that are local paths, registry errors that said too little, hanging helpers. */
class NewUserErrorsTest {
    @TempDir Path tmp;

    @Test
    void anExistingFileWithoutPrefixIsNeverARegistryReference() throws Exception {
        Path tar = tmp.resolve("base.tar");
        var r = dev.kiln.ext4.ExternalTools.run(List.of("tar", "-cf", tar.toString(), "-C", tmp.toString(), "."));
        assertEquals(0, r.exit(), r.out());
        InvalidSourceException e = assertThrows(InvalidSourceException.class, () -> Sources.parse(tar.toString()));
        assertTrue(e.getMessage().contains("say what it is: tar:" + tar), e.getMessage());
        assertTrue(e.getMessage().contains("docker-archive:FILE"), "lists the prefixes: " + e.getMessage());

        Path layout = Files.createDirectories(tmp.resolve("layout"));
        Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        e = assertThrows(InvalidSourceException.class, () -> Sources.parse(layout.toString()));
        assertTrue(e.getMessage().contains("oci:" + layout), e.getMessage());

        e = assertThrows(InvalidSourceException.class, () -> Sources.parse("./no-such-base.tar"));
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
    }

    @Test
    void anUnknownPrefixIsRefusedWithTheOnesThatExist() throws Exception {
        Path zip = tmp.resolve("base.tar");
        Files.write(zip, new byte[10240]);
        InvalidSourceException e = assertThrows(InvalidSourceException.class, () -> Sources.parse("zip:" + zip));
        assertTrue(e.getMessage().contains("unknown prefix 'zip:'"), e.getMessage());
        assertTrue(e.getMessage().contains("tar:" + zip), "suggests the likely prefix: " + e.getMessage());
        // Registry references with a tag or a port stay registry references (parsing goes nowhere).
        assertTrue(Sources.parse("alpine:3.20") instanceof RegistrySource);
        assertTrue(Sources.parse("localhost:5000/nex/base:1") instanceof RegistrySource);
    }

    private static RegistrySource pull(String ref, Path cache) {
        RegistryClient client = new RegistryClient(new Credentials(null, null), Set.of(), 2, 10);
        return new RegistrySource(ImageReference.parse(ref), OciSource.Platform.parse("linux/amd64"), client,
                new BlobCache(cache), RegistrySource.Pull.MISSING, null);
    }

    private void build(Source s) throws Exception {
        try (var w = dev.kiln.ext4.Ext4Writer.create(tmp.resolve("x.ext4"),
                dev.kiln.ext4.Ext4Options.builder(16L << 20).build())) {
            s.applyTo(w);
        }
    }

    @Test
    void aRefusedConnectionNamesTheHostAndWhatToCheck() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String host = "127.0.0.1:" + port;
        RegistryException e = assertThrows(RegistryException.class, () -> build(pull(host + "/nex/base:1", tmp.resolve("c"))));
        assertTrue(e.getMessage().contains(host + " refused the connection; check the port"), e.getMessage());
        assertTrue(!e.getMessage().contains("ConnectException null"), e.getMessage());
    }

    @Test
    void aNameThatDoesNotResolveSaysDns() throws Exception {
        RegistryException e = assertThrows(RegistryException.class,
                () -> build(pull("no-such-registry.invalid/nex/base:1", tmp.resolve("c"))));
        assertTrue(e.getMessage().contains("no-such-registry.invalid"), e.getMessage());
        assertTrue(e.getMessage().contains("cannot resolve") || e.getMessage().contains("no route")
                || e.getMessage().contains("did not answer"), "says what failed: " + e.getMessage());
    }

    @Test
    void theRegistrysErrorBodyIsShown() throws Exception {
        Path layout = Files.createDirectories(tmp.resolve("layout"));
        String desc = OciFixture.image(layout, OciSourceTest.layers(), OciFixture.Codec.GZIP, "linux", "amd64");
        OciFixture.index(layout, List.of(OciFixture.tagged(desc, "1")));
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.NONE)) {
            RegistryException e = assertThrows(RegistryException.class,
                    () -> build(pull(reg.host() + "/nex/other:1", tmp.resolve("c"))));
            assertTrue(e.getMessage().contains("NAME_UNKNOWN"), e.getMessage());
        }
        assertEquals("; MANIFEST_UNKNOWN: manifest unknown; DENIED: x", detail("{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\","
                + "\"message\":\"manifest unknown\",\"detail\":{}},{\"code\":\"DENIED\",\"message\":\"x\"}]}"));
        assertEquals("", detail("<html>gateway timeout</html>"));
    }

    private static String detail(String body) throws Exception {
        var m = RegistryClient.class.getDeclaredMethod("errorDetail", byte[].class);
        m.setAccessible(true);
        return (String) m.invoke(null, (Object) body.getBytes());
    }

    @Test
    void tokensAreSharedSafelyByParallelDownloads() throws Exception {
        Path layout = Files.createDirectories(tmp.resolve("layout"));
        String desc = OciFixture.image(layout, OciSourceTest.layers(), OciFixture.Codec.GZIP, "linux", "amd64");
        OciFixture.index(layout, List.of(OciFixture.tagged(desc, "1")));
        try (FakeRegistry reg = new FakeRegistry(layout, FakeRegistry.Auth.BEARER)) {
            // One client, as the layer downloads share one: its token map is written from every thread.
            RegistryClient client = new RegistryClient(new Credentials(null, null), Set.of(), 2, 10);
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                List<Future<?>> all = new ArrayList<>();
                for (int i = 0; i < 32; i++) {
                    int n = i;
                    all.add(pool.submit(() -> {
                        build2(new RegistrySource(ImageReference.parse(reg.host() + "/nex/base:1"),
                                OciSource.Platform.parse("linux/amd64"), client, new BlobCache(tmp.resolve("cache-" + n)),
                                RegistrySource.Pull.MISSING, null), "x" + n + ".ext4");
                        return null;
                    }));
                }
                for (Future<?> f : all) {
                    f.get();
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    private void build2(Source s, String name) throws Exception {
        try (var w = dev.kiln.ext4.Ext4Writer.create(tmp.resolve(name), dev.kiln.ext4.Ext4Options.builder(16L << 20).build())) {
            s.applyTo(w);
        }
    }

    @Test
    void aHangingProcessIsStoppedAtItsDeadline() throws Exception {
        Process p = new ProcessBuilder("sleep", "60").start();
        long t0 = System.nanoTime();
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> Subprocess.drainAndWait(p, 1, "sleep"));
        assertTrue(e.getMessage().contains("no answer after 1 s"), e.getMessage());
        assertTrue(!p.isAlive() || p.waitFor(5, java.util.concurrent.TimeUnit.SECONDS), "killed");
        assertTrue(System.nanoTime() - t0 < 30_000_000_000L);
    }
}
