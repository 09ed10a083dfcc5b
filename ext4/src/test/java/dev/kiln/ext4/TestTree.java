package dev.kiln.ext4;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * A tree of entries for tests: written into an {@link Ext4Writer}, and described as the
 * expected result (type, mode, owner, times, size, content digest, link target, device,
 * xattrs, hard-link group) for comparison with what a reader, debugfs or the kernel sees.
 */
public final class TestTree {
    public TestTree() {}

    public enum Kind { DIR, FILE, SYMLINK, CHR, BLK, FIFO, SOCK }

    /** One expected node; {@code linkGroup} names the first path of a hard-link group. */
    public record Node(String path, Kind kind, Metadata md, long size, long seed, int holeEvery,
            String target, int major, int minor, String linkGroup) {}

    private final Map<String, Node> nodes = new TreeMap<>();
    private final List<Object[]> ops = new ArrayList<>();

    public Map<String, Node> nodes() {
        return nodes;
    }

    public static Metadata md(int mode, long uid, long gid, long sec, int nanos) {
        Instant t = Instant.ofEpochSecond(sec, nanos);
        return new Metadata(mode, uid, gid, t.plusSeconds(1), t, t.plusSeconds(2), t.minusSeconds(3), Map.of());
    }

    public TestTree dir(String path, Metadata md) {
        nodes.put(path, new Node(path, Kind.DIR, md, 0, 0, 0, null, 0, 0, null));
        ops.add(new Object[] {"dir", path});
        return this;
    }

    /** A file of pseudo-random content; every {@code holeEvery}-th 4 KiB block is zero (0: none). */
    public TestTree file(String path, Metadata md, long size, long seed, int holeEvery) {
        nodes.put(path, new Node(path, Kind.FILE, md, size, seed, holeEvery, null, 0, 0, null));
        ops.add(new Object[] {"file", path});
        return this;
    }

    public TestTree symlink(String path, Metadata md, String target) {
        nodes.put(path, new Node(path, Kind.SYMLINK, md, target.length(), 0, 0, target, 0, 0, null));
        ops.add(new Object[] {"symlink", path});
        return this;
    }

    public TestTree device(String path, Kind kind, Metadata md, int major, int minor) {
        nodes.put(path, new Node(path, kind, md, 0, 0, 0, null, major, minor, null));
        ops.add(new Object[] {"dev", path});
        return this;
    }

    public TestTree special(String path, Kind kind, Metadata md) {
        nodes.put(path, new Node(path, kind, md, 0, 0, 0, null, 0, 0, null));
        ops.add(new Object[] {"special", path});
        return this;
    }

    public TestTree hardLink(String path, String target) {
        Node t = nodes.get(target);
        String group = t.linkGroup() == null ? target : t.linkGroup();
        nodes.put(target, withGroup(t, group));
        nodes.put(path, new Node(path, t.kind(), t.md(), t.size(), t.seed(), t.holeEvery(), t.target(), t.major(),
                t.minor(), group));
        ops.add(new Object[] {"link", path, target});
        return this;
    }

    private static Node withGroup(Node n, String g) {
        return new Node(n.path(), n.kind(), n.md(), n.size(), n.seed(), n.holeEvery(), n.target(), n.major(),
                n.minor(), g);
    }

    /**
     * A copy with only the nodes {@code keep} accepts, their metadata passed through
     * {@code md} (e.g. to what a format can carry); hard links follow their targets.
     */
    public TestTree filtered(java.util.function.Predicate<Node> keep, java.util.function.UnaryOperator<Metadata> md) {
        TestTree t = new TestTree();
        List<Node> links = new ArrayList<>();
        for (Node n : nodes.values()) {
            if (!keep.test(n)) {
                continue;
            }
            if (n.linkGroup() != null && !n.linkGroup().equals(n.path())) {
                links.add(n);
                continue;
            }
            Metadata m = md.apply(n.md());
            switch (n.kind()) {
                case DIR -> t.dir(n.path(), m);
                case FILE -> t.file(n.path(), m, n.size(), n.seed(), n.holeEvery());
                case SYMLINK -> t.symlink(n.path(), m, n.target());
                case CHR, BLK -> t.device(n.path(), n.kind(), m, n.major(), n.minor());
                default -> t.special(n.path(), n.kind(), m);
            }
        }
        for (Node n : links) {
            if (t.nodes.containsKey(n.linkGroup())) {
                t.hardLink(n.path(), n.linkGroup());
            }
        }
        return t;
    }

    public void writeTo(Ext4Writer w) throws IOException {
        for (Object[] op : ops) {
            String path = (String) op[1];
            Node n = nodes.get(path);
            switch ((String) op[0]) {
                case "dir" -> w.directory(path, n.md());
                case "file" -> w.file(path, n.md(), n.size(), content(n));
                case "symlink" -> w.symlink(path, n.md(), n.target());
                case "dev" -> {
                    if (n.kind() == Kind.CHR) {
                        w.charDevice(path, n.md(), n.major(), n.minor());
                    } else {
                        w.blockDevice(path, n.md(), n.major(), n.minor());
                    }
                }
                case "special" -> {
                    if (n.kind() == Kind.FIFO) {
                        w.fifo(path, n.md());
                    } else {
                        w.socket(path, n.md());
                    }
                }
                case "link" -> w.hardLink(path, (String) op[2]);
                default -> throw new IllegalStateException();
            }
        }
    }

    /** The content of a file node, generated on the fly. */
    public static InputStream content(Node n) {
        return new Content(n.size(), n.seed(), n.holeEvery());
    }

    public static String sha256(Node n) throws IOException {
        return sha256(content(n));
    }

    /** Digests and closes {@code in}. */
    public static String sha256(InputStream in) throws IOException {
        try (in) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            int r;
            while ((r = in.read(buf)) > 0) {
                md.update(buf, 0, r);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Pseudo-random bytes, with whole zero 4 KiB blocks every {@code holeEvery} blocks. */
    static final class Content extends InputStream {
        private final long size;
        private final int holeEvery;
        private final Random random;
        private final byte[] block = new byte[4096];
        private long pos;
        private int blockPos = 4096;
        private long blockIndex = -1;

        Content(long size, long seed, int holeEvery) {
            this.size = size;
            this.holeEvery = holeEvery;
            this.random = new Random(seed);
        }

        private void refill() {
            blockIndex++;
            if (holeEvery > 0 && blockIndex % holeEvery == holeEvery - 1) {
                java.util.Arrays.fill(block, (byte) 0);
            } else {
                random.nextBytes(block);
            }
            blockPos = 0;
        }

        @Override
        public int read() {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (pos >= size) {
                return -1;
            }
            int n = (int) Math.min(len, size - pos);
            int done = 0;
            while (done < n) {
                if (blockPos == 4096) {
                    refill();
                }
                int k = Math.min(n - done, 4096 - blockPos);
                System.arraycopy(block, blockPos, b, off + done, k);
                blockPos += k;
                done += k;
            }
            pos += n;
            return n;
        }
    }

    /** A tree with every entry type and the metadata edge cases a rootfs has. */
    public static TestTree everything() {
        TestTree t = new TestTree();
        long sec = 1_700_000_000L;
        t.dir("/", md(0755, 0, 0, sec, 0));
        t.dir("/etc", md(0755, 0, 0, sec, 123456789));
        t.file("/etc/passwd", md(0644, 0, 0, sec, 1), 1234, 1, 0);
        t.file("/etc/shadow", md(0640, 0, 42, sec, 2), 0, 2, 0);
        t.file("/usr/bin/sudo", md(04755, 0, 0, sec, 3), 50_000, 3, 0);
        t.file("/usr/bin/wall", md(02755, 0, 5, sec, 4), 9000, 4, 0);
        t.dir("/tmp", md(01777, 0, 0, sec, 5));
        t.dir("/home/nex", md(0700, 1000, 1000, sec, 6));
        t.file("/home/nex/big-uid", md(0600, 4_000_000_000L, 3_000_000_000L, sec, 7), 10, 5, 0);
        t.file("/home/nex/sparse", md(0644, 1000, 1000, sec, 8), 4096 * 40 + 100, 6, 3);
        t.file("/home/nex/zeros", md(0644, 1000, 1000, sec, 9), 4096 * 16, 7, 1);
        t.file("/home/nex/old", md(0644, 1000, 1000, -100_000_000L, 10), 17, 8, 0);
        t.file("/home/nex/future", md(0644, 1000, 1000, 5_000_000_000L, 11), 17, 9, 0);
        t.symlink("/bin", md(0777, 0, 0, sec, 12), "usr/bin");
        t.symlink("/home/nex/long-link", md(0777, 0, 0, sec, 13), "/very/long/" + "x".repeat(80) + "/target");
        t.symlink("/home/nex/edge-link", md(0777, 0, 0, sec, 14), "y".repeat(59));
        t.symlink("/home/nex/edge-link2", md(0777, 0, 0, sec, 15), "z".repeat(60));
        t.device("/dev/null", Kind.CHR, md(0666, 0, 0, sec, 16), 1, 3);
        t.device("/dev/sda", Kind.BLK, md(0660, 0, 6, sec, 17), 8, 0);
        t.device("/dev/big", Kind.CHR, md(0600, 0, 0, sec, 18), 300, 70000);
        t.special("/run/initctl", Kind.FIFO, md(0600, 0, 0, sec, 19));
        t.special("/run/sock", Kind.SOCK, md(0755, 0, 0, sec, 20));
        t.file("/usr/lib/libc.so", md(0755, 0, 0, sec, 21), 300_000, 10, 0);
        t.hardLink("/usr/lib/libc.so.6", "/usr/lib/libc.so");
        t.hardLink("/usr/lib/libc-again.so", "/usr/lib/libc.so");
        Map<String, byte[]> caps = new LinkedHashMap<>();
        byte[] cap = new byte[20];
        Le.put32(cap, 0, 0x02000001L);
        Le.put32(cap, 4, 1L << 13 | 1L << 7); // cap_net_raw, cap_setuid
        caps.put("security.capability", cap);
        caps.put("user.comment", "hello".getBytes());
        t.file("/usr/bin/ping", md(0755, 0, 0, sec, 22).withXattrs(caps), 20_000, 11, 0);
        Map<String, byte[]> big = new LinkedHashMap<>();
        big.put("user.big", new byte[900]);
        big.put("user.small", new byte[] {1, 2, 3});
        big.put("trusted.t", "t".getBytes());
        t.file("/home/nex/xattr-block", md(0644, 0, 0, sec, 23).withXattrs(big), 1, 12, 0);
        t.dir("/home/nex/dir-xattr", md(0755, 0, 0, sec, 24).withXattrs(Map.of("user.d", "dir".getBytes())));
        String deep = "/deep" + "/d".repeat(60);
        t.file(deep + "/leaf", md(0644, 0, 0, sec, 25), 5, 13, 0);
        t.file("/names/" + "n".repeat(255), md(0644, 0, 0, sec, 26), 3, 14, 0);
        t.file("/names/ünïcödé-名前", md(0644, 0, 0, sec, 27), 3, 15, 0);
        t.file("/names/with space and 'quote'", md(0644, 0, 0, sec, 28), 3, 16, 0);
        return t;
    }
}
