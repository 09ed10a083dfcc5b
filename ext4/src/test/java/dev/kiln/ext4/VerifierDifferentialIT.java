package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Differential testing against e2fsck: images made by mkfs.ext4 (and by kiln) are damaged field
 * by field with debugfs -w, and by random byte flips in metadata blocks, and kiln verify must
 * agree with {@code e2fsck -fn} on clean against damaged for every case. The random part uses a
 * fixed seed that can be changed with {@code -Dkiln.diff.seed=N} to explore.
 */
class VerifierDifferentialIT {
    @TempDir static Path tmp;
    static Path tree;

    @BeforeAll
    static void makeTree() throws Exception {
        ExternalTools.require("mkfs.ext4");
        ExternalTools.require("debugfs");
        ExternalTools.require("e2fsck");
        tree = Files.createDirectories(tmp.resolve("tree"));
        Files.createDirectories(tree.resolve("etc"));
        Files.writeString(tree.resolve("etc/hostname"), "nex\n");
        Files.writeString(tree.resolve("etc/small"), "x");
        byte[] big = new byte[300_000];
        new Random(1).nextBytes(big);
        Files.write(tree.resolve("etc/big"), big);
        Files.createSymbolicLink(tree.resolve("fast"), Path.of("etc/hostname"));
        Files.createSymbolicLink(tree.resolve("slow"), Path.of("etc/" + "d".repeat(90) + "/target"));
        Files.createLink(tree.resolve("etc/hard"), tree.resolve("etc/hostname"));
        Path wide = Files.createDirectories(tree.resolve("wide"));
        for (int i = 0; i < 300; i++) {
            Files.writeString(wide.resolve("file-with-a-longish-name-" + i), "");
        }
        Files.createDirectories(tree.resolve("small-dir"));
        Files.writeString(tree.resolve("small-dir/a"), "a");
        // Many separate data runs: a depth-1 extent tree.
        try (RandomAccessFile f = new RandomAccessFile(tree.resolve("sparse").toFile(), "rw")) {
            for (int i = 0; i < 12; i++) {
                f.seek(i * 65536L);
                f.write(new byte[] {1, 2, 3, 4});
            }
        }
        if (ExternalTools.isRoot()) {
            ExternalTools.run(List.of("mknod", tree.resolve("null").toString(), "c", "1", "3"));
            ExternalTools.run(List.of("setfattr", "-n", "user.kiln", "-v", "v".repeat(300), tree.resolve("etc/big").toString()));
        }
    }

    /** A fresh copy of a base image made by mkfs.ext4 with these extra options. */
    static Path mkfs(String name, String... opts) throws Exception {
        Path img = tmp.resolve(name + "-" + System.nanoTime() + ".ext4");
        List<String> cmd = new ArrayList<>(List.of("mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", tree.toString()));
        cmd.addAll(List.of(opts));
        cmd.addAll(List.of(img.toString(), "64M"));
        var r = ExternalTools.run(cmd);
        assertEquals(0, r.exit(), cmd + "\n" + r.out());
        return img;
    }

    /** A base image made by mkfs.ext4 with no content. */
    static Path mkfsEmpty(String name, String... opts) throws Exception {
        Path img = tmp.resolve(name + "-" + System.nanoTime() + ".ext4");
        List<String> cmd = new ArrayList<>(List.of("mkfs.ext4", "-q", "-F"));
        cmd.addAll(List.of(opts));
        cmd.addAll(List.of(img.toString(), "64M"));
        var r = ExternalTools.run(cmd);
        assertEquals(0, r.exit(), cmd + "\n" + r.out());
        return img;
    }

    static Path kiln(String name) throws Exception {
        Path img = tmp.resolve(name + "-" + System.nanoTime() + ".ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).build())) {
            TestTree.everything().writeTo(w);
        }
        return img;
    }

    /**
     * e2fsck -fn's verdict, read as the writer's tests read it: clean only when it exits 0 and
     * asks to fix nothing (it exits 0 on a wrong superblock free count, which it does print).
     */
    static boolean fsckClean(Path img) throws Exception {
        var r = ExternalTools.run(List.of("e2fsck", "-fn", img.toString()));
        return r.exit() == 0 && !r.out().contains("Fix?") && !r.out().contains("Clear?") && !r.out().contains("WARNING")
                && !r.out().contains("trying backup blocks");
    }

    /** kiln verify's verdict; an image refused by the reader is damaged; any other exception is a crash (a failure). */
    static boolean kilnClean(Path img, StringBuilder why) {
        try (Ext4Reader r = Ext4Reader.open(img)) {
            List<Ext4Verifier.Problem> p = Ext4Verifier.verify(r);
            p.stream().limit(3).forEach(x -> why.append(x).append('\n'));
            return p.isEmpty();
        } catch (CorruptImageException e) {
            why.append("refused: ").append(e.getMessage());
            return false;
        } catch (Exception e) {
            fail("kiln verify crashed on " + img + ": " + e, e);
            return false;
        }
    }

    static void debugfs(Path img, String request) throws Exception {
        var r = ExternalTools.run(List.of("debugfs", "-w", "-R", request, img.toString()));
        assertEquals(0, r.exit(), request + ": " + r.out());
    }

    /** One case: a base, a damage, and the two verdicts, which must agree. */
    private final List<String> disagreements = new ArrayList<>();

    private void agree(String name, Path img) throws Exception {
        boolean fsck = fsckClean(img);
        StringBuilder why = new StringBuilder();
        boolean ours = kilnClean(img, why);
        if (fsck != ours) {
            String out = ExternalTools.run(List.of("e2fsck", "-fn", img.toString())).out();
            disagreements.add(name + ": e2fsck says " + (fsck ? "clean" : "damaged") + ", kiln says "
                    + (ours ? "clean" : "damaged: " + why.toString().trim()) + "\n    e2fsck: "
                    + out.lines().filter(l -> !l.startsWith("Pass") && !l.startsWith("e2fsck 1.")).limit(4)
                            .reduce("", (a, b) -> a + b + " | "));
        }
    }

    private void report() {
        if (!disagreements.isEmpty()) {
            fail(disagreements.size() + " disagreement(s) with e2fsck -fn:\n" + String.join("\n", disagreements));
        }
    }

    @Test
    void cleanImagesOfEveryKindAreCleanForBoth() throws Exception {
        agree("mkfs default", mkfs("default"));
        agree("mkfs 1k blocks", mkfs("onek", "-b", "1024"));
        agree("mkfs inline_data", mkfs("inline", "-O", "inline_data"));
        agree("mkfs no metadata_csum", mkfs("nocsum", "-O", "^metadata_csum"));
        agree("mkfs no ext_attr", mkfs("noxattr", "-O", "^ext_attr"));
        agree("mkfs orphan_file", mkfs("orphan", "-O", "orphan_file"));
        agree("mkfs quota, populated with -d (mke2fs leaves the quota files stale)", mkfs("quota", "-O", "quota"));
        agree("mkfs quota, empty", mkfsEmpty("quota-empty", "-O", "quota"));
        agree("mkfs quota with project quotas, empty", mkfsEmpty("quota-prj", "-O", "quota,project", "-I", "256"));
        agree("mkfs ext2 (revision 1, no journal, block maps)", mkfs("ext2", "-t", "ext2"));
        agree("mkfs ext3 (block-mapped journal)", mkfs("ext3", "-t", "ext3"));
        agree("mkfs ext3 1k blocks", mkfs("ext3k", "-t", "ext3", "-b", "1024"));
        agree("mkfs revision 0", mkfs("rev0", "-t", "ext2", "-r", "0"));
        agree("mkfs bigalloc, 1k blocks in 16k clusters", mkfs("bigalloc", "-O", "bigalloc", "-C", "16384"));
        agree("mkfs bigalloc, 4k blocks in 64k clusters", mkfs("bigalloc4", "-O", "bigalloc", "-b", "4096", "-C", "65536"));
        agree("kiln", kiln("kiln"));
        report();
    }

    @Test
    void fieldByFieldDamageAgrees() throws Exception {
        List<Object[]> cases = List.of(
                new Object[] {"i_size shorter than the last mapped block", "default", "sif /etc/big size 4096"},
                new Object[] {"xattr block without ext_attr", "noxattr", "sif /etc/hostname file_acl 1000"},
                new Object[] {"INLINE_DATA_FL without inline_data", "default", "sif /etc/small flags 0x10000000"},
                new Object[] {"directory larger than allowed", "nocsum", "sif /small-dir size 0x100000000"},
                new Object[] {"fast symlink with a size too big", "default", "sif /fast size 80"},
                new Object[] {"fast symlink with a size too small", "nocsum", "sif /fast size 3"},
                new Object[] {"bad-blocks inode with blocks", "nocsum", "sif <1> block[0] 12345"},
                new Object[] {"quota inode number out of range", "default", "ssv usr_quota_inum 99999999"},
                new Object[] {"want_extra_isize out of range", "default", "ssv want_extra_isize 300"},
                new Object[] {"min_extra_isize out of range", "default", "ssv min_extra_isize 300"},
                new Object[] {"link count", "default", "sif /etc/hostname links_count 7"},
                new Object[] {"mode of a directory", "nocsum", "sif /small-dir mode 0100644"},
                new Object[] {"free blocks count", "nocsum", "ssv free_blocks_count 12"},
                new Object[] {"free inodes count", "nocsum", "ssv free_inodes_count 12"},
                new Object[] {"dtime on a live inode", "nocsum", "sif /etc/hostname dtime 12345"},
                new Object[] {"extent tree depth", "nocsum", "sif /etc/big block[1] 0x0005f30a"},
                new Object[] {"generation (checksum)", "default", "sif /etc/hostname generation 77"},
                new Object[] {"state not clean", "default", "ssv state 0"},
                new Object[] {"first inode", "default", "ssv first_ino 5"},
                new Object[] {"inode size 0 on revision 1", "default", "ssv inode_size 0"});
        for (Object[] c : cases) {
            Path img = mkfs((String) c[1], opts((String) c[1]));
            debugfs(img, (String) c[2]);
            agree(c[0] + " (" + c[2] + ")", img);
        }
        report();
    }

    /** i_block of an inode, as 15 little-endian words. */
    static long[] iblock(Path img, String path) throws Exception {
        try (Ext4Reader r = Ext4Reader.open(img)) {
            Inode in = r.readInode(r.resolve(path, false));
            long[] w = new long[Inode.N_BLOCKS];
            for (int i = 0; i < w.length; i++) {
                w[i] = Le.get32(in.block, 4 * i);
            }
            return w;
        }
    }

    @Test
    void structureDamageAgrees() throws Exception {
        // An interior extent node whose logical start differs from its child's first extent.
        Path img = mkfs("nocsum", opts("nocsum"));
        long[] w = iblock(img, "/sparse");
        assertEquals(1, w[1] >>> 16 & 0xFFFF, "/sparse has a depth-1 extent tree");
        debugfs(img, "sif /sparse block[3] " + (w[3] + 7));
        agree("interior extent node start", img);

        // A wrong file type in an inline-data directory's entry.
        img = mkfs("inline", opts("inline"));
        w = iblock(img, "/small-dir");
        debugfs(img, "sif /small-dir block[2] 0x" + Long.toHexString((w[2] & 0x00FFFFFFL) | 0x07000000L));
        agree("file type in an inline directory", img);

        // The journal superblock says version 1 but carries version 2 features.
        img = mkfs("default");
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long jino = r.journalInode();
            long first = r.blockMap(jino, r.readInode(jino)).physical(0);
            try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                f.seek(first * r.blockSize + 4);
                f.writeInt(3);
            }
        }
        agree("journal superblock version", img);

        // bigalloc: a file's i_blocks, and a cluster's bit in the bitmap.
        img = mkfs("bigalloc", "-O", "bigalloc", "-C", "16384");
        debugfs(img, "sif /etc/big blocks 8");
        agree("bigalloc i_blocks", img);
        img = mkfs("bigalloc", "-O", "bigalloc", "-C", "16384");
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long blk = r.blockMap(r.resolve("/etc/big", false), r.readInode(r.resolve("/etc/big", false))).physical(0);
            debugfs(img, "freeb " + blk);
        }
        agree("bigalloc bitmap", img);

        // shared_blocks: two files may share data blocks; without the feature they may not.
        for (boolean shared : new boolean[] {true, false}) {
            img = mkfs("nocsum", opts("nocsum"));
            long[] big = iblock(img, "/etc/big");
            long[] host = iblock(img, "/etc/hostname");
            // Point /etc/hostname's one extent at /etc/big's first block.
            debugfs(img, "sif /etc/hostname block[5] " + big[5]);
            debugfs(img, "sif /etc/hostname block[4] " + (big[4] & 0xFFFF0000L | host[4] & 0xFFFF));
            if (shared) {
                debugfs(img, "feature shared_blocks");
            }
            agree("two files sharing a block, shared_blocks " + (shared ? "on" : "off"), img);
        }

        // Bitmap padding: the bytes past a group's last inode must be all ones.
        img = mkfs("nocsum", opts("nocsum"));
        long ibitmap;
        try (Ext4Reader r = Ext4Reader.open(img)) {
            ibitmap = r.groups[0].inodeBitmap * r.blockSize + r.inodesPerGroup / 8;
        }
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(ibitmap);
            f.write(0x7F);
        }
        agree("inode bitmap padding", img);

        // A damaged primary superblock: e2fsck falls back to a backup, and so must the reader.
        img = mkfs("nocsum", opts("nocsum"));
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(1024 + 0x38);
            f.write(new byte[] {0, 0});
        }
        agree("primary superblock magic", img);
        report();
    }

    static String[] opts(String base) {
        return switch (base) {
            case "noxattr" -> new String[] {"-O", "^ext_attr"};
            case "nocsum" -> new String[] {"-O", "^metadata_csum"};
            case "inline" -> new String[] {"-O", "inline_data"};
            default -> new String[0];
        };
    }

    @Test
    void randomFlipsInMetadataAgree() throws Exception {
        long seed = Long.getLong("kiln.diff.seed", 20261202L);
        Random rnd = new Random(seed);
        for (int i = 0; i < 24; i++) {
            String base = List.of("default", "nocsum", "inline").get(i % 3);
            Path img = mkfs(base, opts(base));
            List<long[]> blocks = metadataBlocks(img);
            long[] target = blocks.get(rnd.nextInt(blocks.size()));
            int bs = (int) target[1];
            long off = target[0] * bs + rnd.nextInt(bs);
            int bit = 1 << rnd.nextInt(8);
            try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
                f.seek(off);
                int b = f.read();
                f.seek(off);
                f.write(b ^ bit);
            }
            agree("seed " + seed + " case " + i + ": " + base + " byte " + off + " bit " + bit, img);
        }
        report();
    }

    /** Blocks worth damaging: superblock, descriptors, bitmaps, used inode table blocks, directory and extent blocks. */
    static List<long[]> metadataBlocks(Path img) throws Exception {
        List<long[]> out = new ArrayList<>();
        try (Ext4Reader r = Ext4Reader.open(img)) {
            int bs = r.blockSize;
            out.add(new long[] {r.sb.firstDataBlock, bs});
            for (long b : r.gdtBlocks) {
                out.add(new long[] {b, bs});
            }
            for (int g = 0; g < Math.min(2, r.groupCount); g++) {
                out.add(new long[] {r.groups[g].blockBitmap, bs});
                out.add(new long[] {r.groups[g].inodeBitmap, bs});
                out.add(new long[] {r.groups[g].inodeTable, bs});
            }
            r.walk((p, st) -> {
                if (st.isDirectory()) {
                    Inode in = r.readInode(st.ino());
                    if ((in.flags & Inode.FLAG_INLINE_DATA) == 0) {
                        Ext4Reader.BlockMap m = r.blockMap(st.ino(), in);
                        for (long l = 0; l < Layout.ceilDiv(in.size, bs); l++) {
                            out.add(new long[] {m.physical(l), bs});
                        }
                        for (long b : m.metadataBlocks()) {
                            out.add(new long[] {b, bs});
                        }
                    }
                }
            });
        }
        return out;
    }
}
