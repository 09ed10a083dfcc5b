package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Verifier;
import dev.kiln.ext4.Ext4Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

public class OciSourceTest {
    @TempDir Path tmp;

    /** Three layers exercising whiteouts, opaque directories, replacement and hard links across layers. */
    public static List<byte[]> layers() throws Exception {
        byte[] l1 = new OciFixture.Layer()
                .dir("etc").file("etc/passwd", "root:x:0:0::/root:/bin/sh\n").file("etc/motd", "lower\n")
                .dir("opt").dir("opt/app").file("opt/app/old1", "1").file("opt/app/old2", "2")
                .dir("var").dir("var/cache").file("var/cache/blob", "cached")
                .dir("data").file("data/file", "a file that becomes a dir")
                .dir("tree").dir("tree/sub").file("tree/sub/x", "x")
                .file("bin-busybox", "busybox", 0755)
                .finish();
        byte[] l2 = new OciFixture.Layer()
                .whiteout("etc/motd")
                .opaque("opt/app").file("opt/app/new", "new")
                .whiteout("var/cache")
                .hardLink("busybox-link", "bin-busybox")
                .dir("data/file").file("data/file/inside", "now a directory")
                .file("tree", "a directory replaced by a file")
                .finish();
        byte[] l3 = new OciFixture.Layer()
                .file("etc/motd", "upper\n")
                .file("opt/app/newer", "newer")
                .symlink("bin/sh", "/bin-busybox")
                .finish();
        return List.of(l1, l2, l3);
    }

    public static Map<String, String> expected() {
        Map<String, String> m = new TreeMap<>();
        m.put("/etc", "d");
        m.put("/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
        m.put("/etc/motd", "upper\n");
        m.put("/opt", "d");
        m.put("/opt/app", "d");
        m.put("/opt/app/new", "new");
        m.put("/opt/app/newer", "newer");
        m.put("/var", "d");
        m.put("/data", "d");
        m.put("/data/file", "d");
        m.put("/data/file/inside", "now a directory");
        m.put("/tree", "a directory replaced by a file");
        m.put("/bin-busybox", "busybox");
        m.put("/busybox-link", "busybox");
        m.put("/bin", "d");
        m.put("/bin/sh", "-> /bin-busybox");
        return m;
    }

    public static Map<String, String> tree(Path img) throws Exception {
        Map<String, String> m = new TreeMap<>();
        try (Ext4Reader r = Ext4Reader.open(img)) {
            r.walk((p, st) -> {
                if (p.equals("/") || p.startsWith("/lost+found")) {
                    return;
                }
                m.put(p, st.isDirectory() ? "d" : st.isSymlink() ? "-> " + r.readLink(st.ino())
                        : new String(r.open(st.ino()).readAllBytes()));
            });
            assertEquals(List.of(), Ext4Verifier.verify(r));
            assertEquals(r.stat("/bin-busybox", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino(), r.stat("/busybox-link", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino());
        }
        return m;
    }

    private Path build(Source s) throws Exception {
        Path img = tmp.resolve("out.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).build())) {
            s.applyTo(w);
            assertEquals(1.0, s.fraction(), "every layer read");
        }
        return img;
    }

    private Path layout(OciFixture.Codec codec) throws Exception {
        Path layout = Files.createDirectories(tmp.resolve("layout"));
        String desc = OciFixture.image(layout, layers(), codec, "linux", "amd64");
        OciFixture.index(layout, List.of(OciFixture.tagged(desc, "latest")));
        return layout;
    }

    @ParameterizedTest
    @EnumSource(OciFixture.Codec.class)
    void layoutWithWhiteoutsAndOpaqueDirectories(OciFixture.Codec codec) throws Exception {
        Path layout = layout(codec);
        assertEquals(expected(), tree(build(Sources.parse("oci:" + layout + ":latest"))));
        assertEquals(expected(), tree(build(Sources.parse("oci:" + layout))));
    }

    @Test
    void ociArchive() throws Exception {
        Path layout = layout(OciFixture.Codec.GZIP);
        Path archive = OciFixture.tarDir(layout, tmp.resolve("image.tar"));
        assertEquals(expected(), tree(build(Sources.parse("oci-archive:" + archive))));
    }

    @Test
    void dockerArchiveLegacyAndOciForms() throws Exception {
        Path d = Files.createDirectories(tmp.resolve("docker"));
        List<String> layerNames = new ArrayList<>();
        List<String> diffIds = new ArrayList<>();
        int i = 0;
        for (byte[] l : layers()) {
            String name = "layer" + i++ + "/layer.tar";
            Files.createDirectories(d.resolve(name).getParent());
            Files.write(d.resolve(name), l);
            layerNames.add("\"" + name + "\"");
            diffIds.add("\"" + OciFixture.sha256(l) + "\"");
        }
        Files.writeString(d.resolve("config.json"), "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
                + String.join(",", diffIds) + "]}}");
        Files.writeString(d.resolve("manifest.json"), "[{\"Config\":\"config.json\",\"RepoTags\":[\"nex/base:1\"],\"Layers\":["
                + String.join(",", layerNames) + "]}]");
        Path legacy = OciFixture.tarDir(d, tmp.resolve("legacy.tar"));
        assertEquals(expected(), tree(build(Sources.parse("docker-archive:" + legacy))));
        assertEquals(expected(), tree(build(Sources.parse("docker-archive:" + legacy + ":nex/base:1"))));

        Path layout = layout(OciFixture.Codec.NONE);
        Files.writeString(layout.resolve("manifest.json"), "[]");
        Path modern = OciFixture.tarDir(layout, tmp.resolve("modern.tar"));
        assertEquals(expected(), tree(build(Sources.parse("docker-archive:" + modern))));
    }

    @Test
    void multiPlatformIndexSelectsByPlatform() throws Exception {
        Path layout = Files.createDirectories(tmp.resolve("multi"));
        byte[] amd = new OciFixture.Layer().file("arch", "amd64").finish();
        byte[] arm = new OciFixture.Layer().file("arch", "arm64").finish();
        String a = OciFixture.image(layout, List.of(amd), OciFixture.Codec.GZIP, "linux", "amd64") + "}";
        String b = OciFixture.image(layout, List.of(arm), OciFixture.Codec.GZIP, "linux", "arm64") + "}";
        byte[] idx = ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
                + a + "," + b + "]}").getBytes();
        String id = OciFixture.blob(layout, idx);
        OciFixture.index(layout, List.of(OciFixture.tagged("{\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                + "\"digest\":\"" + id + "\",\"size\":" + idx.length, "multi")));
        for (String arch : List.of("amd64", "arm64")) {
            Path img = build(Sources.parse("oci:" + layout + ":multi", OciSource.Platform.parse("linux/" + arch)));
            try (Ext4Reader r = Ext4Reader.open(img)) {
                assertEquals(arch, new String(r.open("/arch").readAllBytes()));
            }
        }
        InvalidSourceException e = assertThrows(InvalidSourceException.class,
                () -> build(Sources.parse("oci:" + layout + ":multi", OciSource.Platform.parse("linux/s390x"))));
        assertTrue(e.getMessage().contains("no image for platform linux/s390x; available: linux/amd64, linux/arm64"),
                e.getMessage());
    }

    @Test
    void corruptBlobsAreRefused() throws Exception {
        Path layout = layout(OciFixture.Codec.GZIP);
        // Damage the last byte of the largest blob (a layer): its digest no longer matches.
        Path biggest;
        try (var s = Files.list(layout.resolve("blobs/sha256"))) {
            biggest = s.max((x, y) -> Long.compare(x.toFile().length(), y.toFile().length())).orElseThrow();
        }
        byte[] b = Files.readAllBytes(biggest);
        b[b.length - 5] ^= 1;
        Files.write(biggest, b);
        InvalidSourceException e = assertThrows(InvalidSourceException.class, () -> build(Sources.parse("oci:" + layout)));
        assertTrue(e.getMessage().contains("mismatch") || e.getMessage().contains("not a readable tar")
                || e.getMessage().contains("corrupt"), e.getMessage());
    }

    @Test
    void diffIdMismatchIsRefused() throws Exception {
        Path layout = Files.createDirectories(tmp.resolve("bad"));
        byte[] l = new OciFixture.Layer().file("x", "x").finish();
        String desc = OciFixture.image(layout, List.of(l), OciFixture.Codec.GZIP, "linux", "amd64");
        // Rewrite the config with a wrong diff_id, and the manifest to point at it.
        OciFixture.index(layout, List.of(desc + "}"));
        Path cfgPath;
        String manifestDigest = desc.replaceAll(".*\"digest\":\"(sha256:[0-9a-f]+)\".*", "$1");
        String manifest = Files.readString(layout.resolve(OciSource.blobPath(manifestDigest)));
        String cfgDigest = manifest.replaceAll(".*\"config\":\\{[^}]*\"digest\":\"(sha256:[0-9a-f]+)\".*", "$1");
        cfgPath = layout.resolve(OciSource.blobPath(cfgDigest));
        String cfg = Files.readString(cfgPath).replaceAll("sha256:[0-9a-f]{64}", "sha256:" + "0".repeat(64));
        String newCfg = OciFixture.blob(layout, cfg.getBytes());
        String newManifest = manifest.replace(cfgDigest, newCfg).replaceAll("\"size\":\\d+\\},\"layers\"",
                "\"size\":" + cfg.length() + "},\"layers\"");
        String nm = OciFixture.blob(layout, newManifest.getBytes());
        OciFixture.index(layout, List.of("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\""
                + nm + "\",\"size\":" + newManifest.length() + "}"));
        InvalidSourceException e = assertThrows(InvalidSourceException.class, () -> build(Sources.parse("oci:" + layout)));
        assertTrue(e.getMessage().contains("diff_id mismatch"), e.getMessage());
    }

    @Test
    void unknownTagListsTheTags() throws Exception {
        Path layout = layout(OciFixture.Codec.GZIP);
        InvalidSourceException e = assertThrows(InvalidSourceException.class,
                () -> build(Sources.parse("oci:" + layout + ":nope")));
        assertTrue(e.getMessage().contains("no image tagged 'nope'; the layout has tags latest"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("nothing")));
    }
}
