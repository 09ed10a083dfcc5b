package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A dir: source keeps every xattr namespace the process may read, as mkfs.ext4 -d does: file
 * capabilities, trusted.*, POSIX ACLs and user.* as root; without root it says what it skipped.
 */
class DirXattrsIT {
    private Path work;

    @AfterEach
    void tearDown() throws Exception {
        if (work != null) {
            ExternalTools.run(List.of("rm", "-rf", work.toString()));
        }
    }

    private Path tree() throws Exception {
        TestKernel.need(ExternalTools.isRoot(), "setting trusted.* xattrs and capabilities needs root");
        ExternalTools.require("setcap");
        ExternalTools.require("setfacl");
        ExternalTools.require("setfattr");
        work = Unprivileged.workDir();
        Path src = Files.createDirectories(work.resolve("src/bin"));
        Files.createDirectories(work.resolve("src/shared"));
        Files.writeString(src.resolve("ping"), "not really ping\n");
        Files.writeString(work.resolve("src/shared/doc"), "shared\n");
        ok("setcap", "cap_net_raw+ep", src.resolve("ping").toString());
        ok("setfattr", "-n", "trusted.overlay.opaque", "-v", "y", work.resolve("src/shared").toString());
        ok("setfattr", "-n", "user.kiln", "-v", "hello", work.resolve("src/shared/doc").toString());
        ok("setfacl", "-m", "u:1000:rw,g:1000:r", work.resolve("src/shared/doc").toString());
        ok("setfacl", "-d", "-m", "u:1000:rwx", work.resolve("src/shared").toString());
        ok("chmod", "-R", "a+rX", work.toString());
        return work.resolve("src");
    }

    private static void ok(String... cmd) throws Exception {
        var r = ExternalTools.run(List.of(cmd));
        assertEquals(0, r.exit(), String.join(" ", cmd) + ": " + r.out());
    }

    private static Map<String, Map<String, String>> xattrs(Path image) throws Exception {
        Map<String, Map<String, String>> out = new TreeMap<>();
        try (Ext4Reader r = Ext4Reader.open(image)) {
            r.walk((p, st) -> {
                Map<String, String> x = new TreeMap<>();
                r.xattrs(st.ino()).forEach((k, v) -> x.put(k, java.util.HexFormat.of().formatHex(v)));
                if (!x.isEmpty()) {
                    out.put(p, x);
                }
            });
        }
        return out;
    }

    @Test
    void asRootEveryNamespaceIsKeptAsMkfsKeepsIt() throws Exception {
        ExternalTools.require("mkfs.ext4");
        Path src = tree();
        Path kiln = work.resolve("kiln.ext4");
        var r = CliRunner.run("build", "--image", "dir:" + src, "-o", kiln.toString(), "--size", "16M", "-q");
        assertEquals(0, r.exit(), r.err());
        ExternalTools.assertFsckClean(kiln);
        Path mkfs = work.resolve("mkfs.ext4");
        var m = ExternalTools.run(List.of("mkfs.ext4", "-q", "-F", "-d", src.toString(), mkfs.toString(), "16M"));
        assertEquals(0, m.exit(), m.out());
        Map<String, Map<String, String>> ours = xattrs(kiln);
        assertEquals(xattrs(mkfs), ours, "the same xattrs as mkfs.ext4 -d");
        assertNotNull(ours.get("/bin/ping").get("security.capability"));
        assertNotNull(ours.get("/shared").get("trusted.overlay.opaque"));
        assertNotNull(ours.get("/shared").get("system.posix_acl_default"));
        assertNotNull(ours.get("/shared/doc").get("system.posix_acl_access"));
        assertEquals("68656c6c6f", ours.get("/shared/doc").get("user.kiln"));
    }

    @Test
    void withoutRootWhatCannotBeReadIsNamed() throws Exception {
        Path src = tree();
        Unprivileged user = Unprivileged.withoutRange();
        Path out = work.resolve("user.ext4");
        var r = user.run(work, "build", "--image", "dir:" + src, "-o", out.toString(), "--size", "16M");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("read without root, so trusted.* xattrs (if any) could not be read"), r.out());
        Map<String, Map<String, String>> x = xattrs(out);
        assertNotNull(x.get("/bin/ping").get("security.capability"), "capabilities are readable without root");
        assertNotNull(x.get("/shared/doc").get("system.posix_acl_access"));
        assertNull(x.getOrDefault("/shared", Map.of()).get("trusted.overlay.opaque"));
        assertArrayEquals("hello".getBytes(), java.util.HexFormat.of().parseHex(x.get("/shared/doc").get("user.kiln")));
    }
}
