package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.ExternalTools;
import dev.kiln.ext4.TestTree;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Images made by other tools, exported with {@code kiln extract --tar} and rebuilt with
 * {@code kiln build --image tar:}, hold the same tree as the directory they were made from.
 */
class InteropRebuildIT {
    @TempDir Path tmp;

    private Path source() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src/etc/init.d")).getParent();
        Files.writeString(src.resolve("hostname"), "nex\n");
        Files.writeString(src.resolve("init.d/agent"), "#!/sbin/openrc-run\n".repeat(50));
        Files.setPosixFilePermissions(src.resolve("init.d/agent"), java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path root = tmp.resolve("src");
        byte[] big = new byte[1 << 20];
        new java.util.Random(3).nextBytes(big);
        Files.write(root.resolve("big"), big);
        try (RandomAccessFile f = new RandomAccessFile(root.resolve("sparse").toFile(), "rw")) {
            f.setLength(5L << 20);
            f.seek(4L << 20);
            f.write(7);
        }
        Files.createSymbolicLink(root.resolve("link"), Path.of("etc/hostname"));
        Files.createLink(root.resolve("hard"), src.resolve("hostname"));
        for (int i = 0; i < 300; i++) {
            Files.writeString(src.resolve("n" + i), "v" + i);
        }
        return root;
    }

    private static Map<String, String> describeDir(Path src) throws Exception {
        Map<String, String> out = new TreeMap<>();
        try (var walk = Files.walk(src)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                if (p.equals(src)) {
                    continue;
                }
                int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
                String d = Integer.toOctalString(mode) + " "
                        + ((FileTime) Files.getAttribute(p, "lastModifiedTime", LinkOption.NOFOLLOW_LINKS)).toInstant().getEpochSecond();
                if (Files.isSymbolicLink(p)) {
                    d += " -> " + Files.readSymbolicLink(p);
                } else if (Files.isRegularFile(p)) {
                    d += " " + TestTree.sha256(Files.newInputStream(p));
                }
                out.put("/" + src.relativize(p), d);
            }
        }
        return out;
    }

    private static Map<String, String> describeImage(Path img) throws Exception {
        Map<String, String> out = new TreeMap<>();
        try (Ext4Reader r = Ext4Reader.open(img)) {
            r.walk((p, st) -> {
                if (p.equals("/") || p.startsWith("/lost+found")) {
                    return;
                }
                int type = st.isDirectory() ? 0040000 : st.isSymlink() ? 0120000 : 0100000;
                String d = Integer.toOctalString(type | st.mode()) + " " + st.mtime().getEpochSecond();
                if (st.isSymlink()) {
                    d += " -> " + r.readLink(st.ino());
                } else if (st.isRegular()) {
                    d += " " + TestTree.sha256(r.open(st.ino()));
                }
                out.put(p, d);
            });
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"mkfs.ext4 -b 4096", "mkfs.ext4 -b 1024", "mkfs.ext4 -O ^metadata_csum,^64bit",
        "mkfs.ext2", "mkfs.ext3", "genext2fs"})
    void exportedAndRebuiltEqualsTheSource(String tool) throws Exception {
        Path src = source();
        Path img = tmp.resolve("foreign.img");
        List<String> cmd = new ArrayList<>(List.of(tool.split(" ")));
        if (tool.equals("genext2fs")) {
            cmd.addAll(List.of("-b", "32768", "-N", "1000", "-d", src.toString(), img.toString()));
        } else {
            ExternalTools.run(List.of("truncate", "-s", "48M", img.toString()));
            cmd.addAll(1, List.of("-q", "-F", "-d", src.toString()));
            cmd.add(img.toString());
        }
        var made = ExternalTools.run(cmd);
        assertEquals(0, made.exit(), made.out());
        Path tar = tmp.resolve("export.tar");
        var ex = CliRunner.run("extract", img.toString(), "--tar", tar.toString());
        assertEquals(0, ex.exit(), ex.err());
        Path rebuilt = tmp.resolve("rebuilt.ext4");
        var b = CliRunner.run("build", "--image", "tar:" + tar, "-o", rebuilt.toString(), "--size", "48M", "-q");
        assertEquals(0, b.exit(), b.err());
        ExternalTools.assertFsckClean(rebuilt);
        Map<String, String> want = describeDir(src);
        Map<String, String> got = describeImage(rebuilt);
        if (tool.equals("genext2fs")) {
            // genext2fs does not keep modification times of the source
            want.replaceAll((k, v) -> v.replaceFirst(" \\d+", ""));
            got.replaceAll((k, v) -> v.replaceFirst(" \\d+", ""));
        }
        List<String> diff = new ArrayList<>();
        for (String k : want.keySet()) {
            if (!want.get(k).equals(got.get(k))) {
                diff.add(k + ": " + want.get(k) + " vs " + got.get(k));
            }
        }
        for (String k : got.keySet()) {
            if (!want.containsKey(k)) {
                diff.add(k + ": unexpected");
            }
        }
        assertTrue(diff.isEmpty(), diff.size() + " differences: " + diff.subList(0, Math.min(5, diff.size())));
        try (Ext4Reader r = Ext4Reader.open(rebuilt)) {
            assertEquals(r.stat("/etc/hostname", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino(), r.stat("/hard", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino());
        }
    }
}
