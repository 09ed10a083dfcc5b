package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Compares an image with a {@link TestTree} through debugfs, and through the kernel when root. */
public final class ImageCheck {
    private ImageCheck() {}

    private static String q(String path) {
        return "\"" + path.replace("\"", "\\\"") + "\"";
    }

    private static final Pattern BLOCK = Pattern.compile("(?m)^debugfs: ");

    /** Checks every node of the tree with debugfs: stat fields, content, link targets, xattrs. */
    public static void withDebugfs(Path image, TestTree tree, Path scratch) throws Exception {
        StringBuilder cmds = new StringBuilder();
        List<TestTree.Node> nodes = new ArrayList<>(tree.nodes().values());
        Map<String, Path> dumps = new HashMap<>();
        int i = 0;
        for (TestTree.Node n : nodes) {
            cmds.append("stat ").append(q(n.path())).append('\n');
            if (n.kind() == TestTree.Kind.FILE || (n.kind() == TestTree.Kind.SYMLINK && n.target().length() > 59)) {
                Path out = scratch.resolve("dump-" + i++);
                dumps.put(n.path(), out);
                cmds.append("dump ").append(q(n.path())).append(' ').append(q(out.toString())).append('\n');
            }
            for (String x : n.md().xattrs().keySet()) {
                Path out = scratch.resolve("xattr-" + i++);
                dumps.put(n.path() + "\0" + x, out);
                cmds.append("ea_get -f ").append(q(out.toString())).append(' ').append(q(n.path())).append(' ')
                        .append(x).append('\n');
            }
        }
        Path cmdFile = scratch.resolve("cmds");
        Files.writeString(cmdFile, cmds);
        String out = ExternalTools.run(List.of("debugfs", "-f", cmdFile.toString(), image.toString())).out();
        String[] blocks = BLOCK.split(out);
        Map<String, String> stats = new HashMap<>();
        for (String b : blocks) {
            if (b.startsWith("stat ")) {
                String first = b.substring(0, b.indexOf('\n'));
                String path = first.substring(6, first.length() - 1).replace("\\\"", "\"");
                stats.put(path, b);
            }
        }
        Map<String, Long> groupInode = new HashMap<>();
        for (TestTree.Node n : nodes) {
            String s = stats.get(n.path());
            if (s == null || s.contains("File not found")) {
                fail("debugfs cannot find " + n.path() + ":\n" + s);
            }
            String where = n.path() + ":\n" + s;
            assertEquals(typeName(n.kind()), group(s, "Type: (\\w+(?: special)?)"), where);
            assertEquals(n.md().mode(), Integer.parseInt(group(s, "Mode:\\s+(\\d+)"), 8), where);
            assertEquals(n.md().uid(), Long.parseLong(group(s, "User:\\s+(-?\\d+)")) & 0xFFFFFFFFL, where);
            assertEquals(n.md().gid(), Long.parseLong(group(s, "Group:\\s+(-?\\d+)")) & 0xFFFFFFFFL, where);
            if (n.kind() != TestTree.Kind.DIR) {
                assertEquals(n.size(), Long.parseLong(group(s, "Size: (\\d+)")), where);
            }
            assertEquals(n.md().mtime(), time(s, "mtime"), where);
            assertEquals(n.md().atime(), time(s, "atime"), where);
            assertEquals(n.md().ctime(), time(s, "ctime"), where);
            assertEquals(n.md().crtime(), time(s, "crtime"), where);
            long ino = Long.parseLong(group(s, "Inode: (\\d+)"));
            if (n.linkGroup() != null) {
                Long other = groupInode.putIfAbsent(n.linkGroup(), ino);
                if (other != null) {
                    assertEquals(other.longValue(), ino, "hard link " + where);
                }
                long members = nodes.stream().filter(o -> n.linkGroup().equals(o.linkGroup())).count();
                assertEquals(members, Long.parseLong(group(s, "Links: (\\d+)")), where);
            }
            switch (n.kind()) {
                case FILE -> {
                    // debugfs 1.47 dumps the whole 60-byte area of an inline-data file; the size bounds it.
                    byte[] dumped = Files.readAllBytes(dumps.get(n.path()));
                    if (dumped.length > n.size()) {
                        dumped = java.util.Arrays.copyOf(dumped, (int) n.size());
                    }
                    assertEquals(TestTree.sha256(n), TestTree.sha256(new java.io.ByteArrayInputStream(dumped)),
                            "content of " + n.path());
                }
                case SYMLINK -> {
                    if (n.target().length() <= 59) {
                        assertEquals(n.target(), group(s, "Fast link dest: \"(.*)\""), where);
                    } else {
                        assertEquals(n.target(), Files.readString(dumps.get(n.path())), where);
                    }
                }
                case CHR, BLK -> {
                    Matcher m = Pattern.compile("Device major/minor number: (\\d+):(\\d+)").matcher(s);
                    assertTrue(m.find(), where);
                    assertEquals(n.major(), Integer.parseInt(m.group(1)), where);
                    assertEquals(n.minor(), Integer.parseInt(m.group(2)), where);
                }
                default -> { }
            }
            for (Map.Entry<String, byte[]> x : n.md().xattrs().entrySet()) {
                Path f = dumps.get(n.path() + "\0" + x.getKey());
                assertTrue(Files.exists(f), "xattr " + x.getKey() + " of " + n.path() + " missing:\n" + out);
                assertEquals(HexFormat.of().formatHex(x.getValue()), HexFormat.of().formatHex(Files.readAllBytes(f)),
                        "xattr " + x.getKey() + " of " + n.path());
            }
        }
    }

    private static String typeName(TestTree.Kind k) {
        return switch (k) {
            case DIR -> "directory";
            case FILE -> "regular";
            case SYMLINK -> "symlink";
            case CHR -> "character special";
            case BLK -> "block special";
            case FIFO -> "FIFO";
            case SOCK -> "socket";
        };
    }

    private static String group(String s, String regex) {
        Matcher m = Pattern.compile(regex).matcher(s);
        if (!m.find()) {
            fail("no " + regex + " in:\n" + s);
        }
        return m.group(1);
    }

    private static Instant time(String s, String field) {
        Matcher m = Pattern.compile("(?m)^\\s*" + field + ": 0x([0-9a-f]+):([0-9a-f]+)").matcher(s);
        if (!m.find()) {
            fail("no " + field + " in:\n" + s);
        }
        long base = Long.parseLong(m.group(1), 16);
        long extra = Long.parseLong(m.group(2), 16);
        return Instant.ofEpochSecond(Inode.seconds(base, extra), Inode.nanos(extra));
    }

    /**
     * Mounts the image read-only through a loop device and compares the kernel's view with the
     * tree. Only as root; returns false (and checks nothing) otherwise.
     */
    public static boolean withMount(Path image, TestTree tree, Path scratch) throws Exception {
        if (!ExternalTools.isRoot()) {
            return false;
        }
        Path mnt = Files.createDirectories(scratch.resolve("mnt"));
        var r = ExternalTools.run(List.of("mount", "-o", "ro,loop,noatime", image.toString(), mnt.toString()));
        if (r.exit() != 0) {
            if ("true".equals(System.getenv("CI"))) {
                fail("mount failed as root: " + r.out());
            }
            ExternalTools.skip("loop mount unavailable here: " + r.out());
        }
        try {
            compareMounted(mnt, tree);
        } finally {
            unmount(mnt);
        }
        return true;
    }

    /** Unmounts, lazily if something still holds the mount, so temp-dir cleanup never walks into it. */
    public static void unmount(Path mnt) throws Exception {
        if (ExternalTools.run(List.of("umount", mnt.toString())).exit() != 0) {
            ExternalTools.run(List.of("umount", "-l", mnt.toString()));
        }
    }

    private static void compareMounted(Path mnt, TestTree tree) throws Exception {
        Map<String, Long> groupInode = new TreeMap<>();
        for (TestTree.Node n : tree.nodes().values()) {
            Path p = n.path().equals("/") ? mnt : mnt.resolve(n.path().substring(1));
            Map<String, Object> a = Files.readAttributes(p, "unix:*", LinkOption.NOFOLLOW_LINKS);
            String where = n.path();
            int mode = (Integer) a.get("mode");
            assertEquals(n.md().mode(), mode & 07777, where);
            assertEquals(n.md().uid(), ((Integer) a.get("uid")) & 0xFFFFFFFFL, where);
            assertEquals(n.md().gid(), ((Integer) a.get("gid")) & 0xFFFFFFFFL, where);
            assertEquals(n.md().mtime(), ((FileTime) a.get("lastModifiedTime")).toInstant(), where);
            assertEquals(n.md().ctime(), ((FileTime) a.get("ctime")).toInstant(), where);
            assertEquals(n.md().atime(), ((FileTime) a.get("lastAccessTime")).toInstant(), where);
            int type = mode & 0170000;
            switch (n.kind()) {
                case DIR -> assertEquals(0040000, type, where);
                case FILE -> {
                    assertEquals(0100000, type, where);
                    assertEquals(n.size(), (Long) a.get("size"), where);
                    assertEquals(TestTree.sha256(n), TestTree.sha256(Files.newInputStream(p)), where);
                }
                case SYMLINK -> {
                    assertEquals(0120000, type, where);
                    assertEquals(n.target(), Files.readSymbolicLink(p).toString(), where);
                }
                case CHR, BLK -> {
                    assertEquals(n.kind() == TestTree.Kind.CHR ? 0020000 : 0060000, type, where);
                    long rdev = (Long) a.get("rdev");
                    long major = ((rdev >>> 8) & 0xFFF) | ((rdev >>> 32) & ~0xFFFL);
                    long minor = (rdev & 0xFF) | ((rdev >>> 12) & ~0xFFL);
                    assertEquals(n.major(), major, where);
                    assertEquals(n.minor(), minor, where);
                }
                case FIFO -> assertEquals(0010000, type, where);
                case SOCK -> assertEquals(0140000, type, where);
            }
            if (n.linkGroup() != null) {
                long ino = (Long) a.get("ino");
                Long other = groupInode.putIfAbsent(n.linkGroup(), ino);
                if (other != null) {
                    assertEquals(other.longValue(), ino, where);
                }
            }
            if (!n.md().xattrs().isEmpty()) {
                var r = ExternalTools.run(List.of("getfattr", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names",
                        p.toString()));
                for (Map.Entry<String, byte[]> x : n.md().xattrs().entrySet()) {
                    String line = x.getKey() + "=0x" + HexFormat.of().formatHex(x.getValue());
                    if (x.getValue().length == 0) {
                        line = x.getKey();
                    }
                    assertTrue(r.out().contains(line), where + ": expected " + line + " in\n" + r.out());
                }
            }
        }
        // Every directory in the image is readable and its entries match what the tree implies.
        try (var walk = Files.walk(mnt)) {
            walk.forEach(p -> {
                String rel = "/" + mnt.relativize(p).toString().replace('\\', '/');
                if (rel.equals("/")) {
                    return;
                }
                if (!rel.startsWith("/lost+found") && !tree.nodes().containsKey(rel)) {
                    boolean isParent = tree.nodes().keySet().stream().anyMatch(k -> k.startsWith(rel + "/"));
                    assertTrue(isParent, "unexpected entry in image: " + rel);
                }
            });
        }
        assertTrue(new String(Files.readAllBytes(Path.of("/proc/mounts")), StandardCharsets.UTF_8).length() > 0);
    }
}
