package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Verifier;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Images made by umoci (layers with whiteouts and opaque directories) and converted by skopeo. */
class ToolImagesIT {
    @TempDir Path tmp;

    private void run(String... cmd) throws Exception {
        var r = ExternalTools.run(List.of(cmd));
        assertEquals(0, r.exit(), String.join(" ", cmd) + ":\n" + r.out());
    }

    private Map<String, String> tree(Source s) throws Exception {
        Path img = tmp.resolve("out-" + System.nanoTime() + ".ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).build())) {
            s.applyTo(w);
        }
        ExternalTools.assertFsckClean(img);
        Map<String, String> m = new TreeMap<>();
        try (Ext4Reader r = Ext4Reader.open(img)) {
            r.walk((p, st) -> {
                if (!p.equals("/") && !p.startsWith("/lost+found")) {
                    m.put(p, st.isDirectory() ? "d" : st.isSymlink() ? "-> " + r.readLink(st.ino())
                            : new String(r.open(st.ino()).readAllBytes()));
                }
            });
            assertEquals(List.of(), Ext4Verifier.verify(r));
        }
        return m;
    }

    @Test
    void umociLayersAndSkopeoConversions() throws Exception {
        Path lay = tmp.resolve("lay");
        run("umoci", "init", "--layout", lay.toString());
        run("umoci", "new", "--image", lay + ":base");
        Path l1 = Files.createDirectories(tmp.resolve("l1/etc/app"));
        Files.writeString(l1.resolve("a"), "a");
        Files.writeString(l1.resolve("b"), "b");
        Files.writeString(l1.getParent().resolve("motd"), "lower motd\n");
        run("umoci", "insert", "--image", lay + ":base", tmp.resolve("l1/etc").toString(), "/etc");
        Path l2 = Files.createDirectories(tmp.resolve("l2/app"));
        Files.writeString(l2.resolve("c"), "c");
        // An opaque layer over /etc/app: a and b disappear, c appears.
        run("umoci", "insert", "--image", lay + ":base", "--opaque", l2.toString(), "/etc/app");
        run("umoci", "insert", "--image", lay + ":base", "--whiteout", "/etc/motd");
        Map<String, String> want = new TreeMap<>(Map.of("/etc", "d", "/etc/app", "d", "/etc/app/c", "c"));
        assertEquals(want, tree(Sources.parse("oci:" + lay + ":base")));

        Path docker = tmp.resolve("d.tar");
        run("skopeo", "copy", "oci:" + lay + ":base", "docker-archive:" + docker + ":nex/base:1");
        assertEquals(want, tree(Sources.parse("docker-archive:" + docker)));
        Path archive = tmp.resolve("o.tar");
        run("skopeo", "copy", "oci:" + lay + ":base", "oci-archive:" + archive + ":base");
        assertEquals(want, tree(Sources.parse("oci-archive:" + archive + ":base")));
        Path zstd = tmp.resolve("zstd");
        run("skopeo", "copy", "--dest-compress-format", "zstd", "oci:" + lay + ":base", "oci:" + zstd + ":z");
        assertEquals(want, tree(Sources.parse("oci:" + zstd + ":z")));
    }
}
