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
 * On Java 22+ the walk can read them itself (llistxattr/lgetxattr through FFM, the release's
 * runtime when getfattr is not installed): the image must be the one getfattr's dump gives,
 * byte for byte, as root and as an unprivileged user.
 */
class DirXattrsIT {
    /** Both builds get it: the image's UUID would otherwise follow the tree's content digest, which is what is compared. */
    private static final String UUID = "6b696c6e-0000-4000-8000-0000000000a7";
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

    /**
     * {@link #tree} with what a reader of xattrs might get wrong: a symlink's and a FIFO's own
     * xattrs (trusted.* as root, an ACL), a name that is UTF-8 but not ASCII, a value with NUL
     * and 0xff bytes, an empty value, and a value too large for the inode (it goes to the xattr
     * block).
     */
    private Path harderTree() throws Exception {
        Path src = tree();
        Files.createSymbolicLink(src.resolve("shared/link"), Path.of("doc"));
        ok("setfattr", "-h", "-n", "trusted.link", "-v", "0x00ff", src.resolve("shared/link").toString());
        ok("mkfifo", src.resolve("shared/fifo").toString());
        ok("setfattr", "-n", "trusted.fifo", "-v", "0x01", src.resolve("shared/fifo").toString());
        ok("setfacl", "-m", "u:1000:r", src.resolve("shared/fifo").toString());
        // The name's bytes from printf: a command-line argument would go through the JVM's
        // file name encoding, which is ASCII under the POSIX locale.
        ok("sh", "-c", "setfattr -n \"$(printf 'user.caf\\303\\251')\" -v 0x00010200ff \"$1\"", "-",
                src.resolve("shared/doc").toString());
        ok("setfattr", "-n", "user.empty", src.resolve("bin/ping").toString());
        ok("setfattr", "-n", "user.big", "-v", "0x" + "a5".repeat(3000), src.resolve("shared").toString());
        return src;
    }

    /** {@link #harderTree}'s xattrs as the image must hold them, read back from it. */
    private static Map<String, Map<String, String>> assertHarderXattrs(Path image) throws Exception {
        ExternalTools.assertFsckClean(image);
        Map<String, Map<String, String>> x = xattrs(image);
        assertEquals("00ff", x.get("/shared/link").get("trusted.link"));
        assertEquals("01", x.get("/shared/fifo").get("trusted.fifo"));
        assertNotNull(x.get("/shared/fifo").get("system.posix_acl_access"));
        assertEquals("00010200ff", x.get("/shared/doc").get("user.caf\u00e9"));
        assertEquals("", x.get("/bin/ping").get("user.empty"));
        assertEquals("a5".repeat(3000), x.get("/shared").get("user.big"));
        return x;
    }

    /** Builds {@code image} with {@code java} under strace; the programs the build ran (its execve lines). */
    private static String traced(List<String> java, String[] build, Path image) throws Exception {
        Path trace = image.resolveSibling(image.getFileName() + ".trace");
        List<String> cmd = new java.util.ArrayList<>(List.of("strace", "-f", "-qq", "-e", "trace=execve", "-o",
                trace.toString()));
        cmd.addAll(java);
        cmd.addAll(List.of("-jar", Unprivileged.jar().toString()));
        var r = ExternalTools.run(with(cmd, with(build, image.toString())));
        assertEquals(0, r.exit(), r.out());
        return Files.readString(trace);
    }

    /** Builds as {@code user} with {@code java} and its {@code options}; the image it wrote, in the work directory. */
    private Path asUser(Unprivileged user, String java, List<String> options, String[] build, String image) throws Exception {
        Path out = work.resolve(image);
        var r = user.runOn(java, options, work, with(build, out.toString()));
        assertEquals(0, r.exit(), r.out());
        return out;
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
        Path src = harderTree();
        Path kiln = work.resolve("kiln.ext4");
        var r = CliRunner.run("build", "--image", "dir:" + src, "-o", kiln.toString(), "--size", "16M", "-q");
        assertEquals(0, r.exit(), r.err());
        ExternalTools.assertFsckClean(kiln);
        Path mkfs = work.resolve("mkfs.ext4");
        // 4 KiB blocks, as kiln's: with the 1 KiB blocks mke2fs picks for 16M, user.big fits no xattr block.
        var m = ExternalTools.run(List.of("mkfs.ext4", "-q", "-F", "-b", "4096", "-d", src.toString(), mkfs.toString(), "16M"));
        assertEquals(0, m.exit(), m.out());
        Map<String, Map<String, String>> ours = xattrs(kiln);
        assertEquals(xattrs(mkfs), ours, "the same xattrs as mkfs.ext4 -d");
        assertNotNull(ours.get("/bin/ping").get("security.capability"));
        assertNotNull(ours.get("/shared").get("trusted.overlay.opaque"));
        assertNotNull(ours.get("/shared").get("system.posix_acl_default"));
        assertNotNull(ours.get("/shared/doc").get("system.posix_acl_access"));
        assertEquals("68656c6c6f", ours.get("/shared/doc").get("user.kiln"));
        assertHarderXattrs(kiln);
    }

    @Test
    void onJava22TheWalksOwnCallsGiveTheImageGetfattrGives() throws Exception {
        Path java = SparseDirIT.newerJava();
        Path src = harderTree();
        ok("chmod", "-R", "a+rX", work.toString());
        String[] build = {"build", "--image", "dir:" + src, "--size", "16M", "-q", "--no-boot-check", "--uuid", UUID,
                "--hash-seed", UUID, "-o"};

        // Both under strace, which names the programs each build ran: getfattr, or nothing.
        ExternalTools.require("strace");
        Path dump = work.resolve("getfattr.ext4");
        assertTrue(traced(List.of("java"), build, dump).contains("getfattr"), "Java 17 runs getfattr");
        Path calls = work.resolve("calls.ext4");
        assertTrue(!traced(List.of(java.toString(), "-Dkiln.xattrs=calls"), build, calls).contains("getfattr"),
                "Java 22+ with the calls runs no getfattr");
        Map<String, Map<String, String>> x = assertHarderXattrs(calls);
        assertEquals(xattrs(dump), x, "the xattrs of getfattr's dump");
        assertEquals(-1L, Files.mismatch(dump, calls), "the same image as with getfattr's dump");

        Unprivileged user = Unprivileged.withoutRange();
        Path userDump = asUser(user, "java", List.of(), build, "user-getfattr.ext4");
        Path userCalls = asUser(user, java.toString(), List.of("-Dkiln.xattrs=calls"), build, "user-calls.ext4");
        ExternalTools.assertFsckClean(userCalls);
        assertNull(xattrs(userCalls).get("/shared/link"), "trusted.* is not listed for a user");
        assertEquals(-1L, Files.mismatch(userDump, userCalls), "as a user too, the image getfattr's dump gives");
    }

    /**
     * On Java 17 the walk reads the xattrs of files and directories from the descriptors it
     * opens (HostFd), and getfattr is run only on the symbolic links and special files that
     * {@code find} lists; {@code -Dkiln.xattrs=getfattr} takes all of them from one dump of the
     * tree, as before. The two must make the same image, as root and as a user, including what
     * only getfattr can read (a link's and a FIFO's own xattrs) and a file the user may not open.
     */
    @Test
    void theWalksDescriptorsGiveTheImageTheWholeTreesDumpGives() throws Exception {
        ExternalTools.require("strace");
        Path src = harderTree();
        Files.createFile(src.resolve("shared/locked"));
        ok("setfattr", "-n", "user.locked", "-v", "0x6b", src.resolve("shared/locked").toString());
        ok("setfacl", "-m", "u:1000:r", src.resolve("shared/locked").toString()); // readable without reading the file
        ok("chmod", "-R", "a+rX", work.toString());
        ok("chmod", "000", src.resolve("shared/locked").toString());
        String[] build = {"build", "--image", "dir:" + src, "--size", "16M", "-q", "--no-boot-check", "--uuid", UUID,
                "--hash-seed", UUID, "-o"};

        Path fds = work.resolve("fds.ext4");
        assertTrue(traced(List.of("java"), build, fds).contains("find"), "the links and special files are found by find");
        Path dump = work.resolve("dump.ext4");
        assertTrue(!traced(List.of("java", "-Dkiln.xattrs=getfattr"), build, dump).contains("find"),
                "the whole tree's dump needs no find");
        Map<String, Map<String, String>> x = assertHarderXattrs(fds);
        assertEquals("6b", x.get("/shared/locked").get("user.locked"));
        assertEquals(xattrs(dump), x, "the xattrs of the whole tree's dump");
        assertEquals(-1L, Files.mismatch(dump, fds), "the same image as with the whole tree's dump");

        // As a user: trusted.* is not listed, and the empty file it may not open is asked of getfattr.
        Unprivileged user = Unprivileged.withoutRange();
        Path userFds = asUser(user, "java", List.of(), build, "user-fds.ext4");
        Path userDump = asUser(user, "java", List.of("-Dkiln.xattrs=getfattr"), build, "user-dump.ext4");
        ExternalTools.assertFsckClean(userFds);
        Map<String, Map<String, String>> u = xattrs(userFds);
        assertNull(u.get("/shared/link"), "trusted.* is not listed for a user");
        assertNotNull(u.get("/shared/locked").get("system.posix_acl_access"), "an empty file the user may not open");
        assertNull(u.get("/shared/locked").get("user.locked"), "user.* of a file the user may not read");
        assertEquals(-1L, Files.mismatch(userDump, userFds), "as a user too, the image the whole tree's dump gives");
    }

    private static String[] with(String[] args, String last) {
        String[] out = java.util.Arrays.copyOf(args, args.length + 1);
        out[args.length] = last;
        return out;
    }

    private static List<String> with(List<String> first, String[] rest) {
        List<String> out = new java.util.ArrayList<>(first);
        out.addAll(List.of(rest));
        return out;
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
