package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link HostStat} read from the JDK's stat object against GNU {@code stat} (the oracle) and
 * against the JDK's public {@code unix:} attribute view, for every file type the walk meets.
 */
class HostStatTest {
    @TempDir Path tmp;

    @Test
    void directFieldsAgreeWithGnuStatAndTheAttributeView() throws Exception {
        // The tests run with java.base/sun.nio.fs open, as the kiln jar does: the fast path is
        // the one under test, not the fallback.
        assertTrue(HostStat.direct(), "sun.nio.fs is open to the tests, so HostStat reads the stat object");
        long seed = Long.getLong("kiln.hoststat.seed", 17);
        Random r = new Random(seed);
        List<Path> paths = new ArrayList<>();
        Path dir = Files.createDirectories(tmp.resolve("d"));
        paths.add(dir);
        for (int i = 0; i < 20; i++) {
            Path f = tmp.resolve("f" + i);
            byte[] b = new byte[r.nextInt(70_000)];
            r.nextBytes(b);
            Files.write(f, b);
            Files.setLastModifiedTime(f, FileTime.from(java.time.Instant.ofEpochSecond(r.nextInt(2_000_000_000), r.nextInt(1_000_000_000))));
            paths.add(f);
        }
        Files.createLink(tmp.resolve("hard"), tmp.resolve("f0"));
        paths.add(tmp.resolve("hard"));
        paths.add(Files.createSymbolicLink(tmp.resolve("sym"), Path.of("f1")));
        paths.add(Files.createSymbolicLink(tmp.resolve("dangling"), Path.of("nowhere")));
        Path fifo = tmp.resolve("fifo");
        assertEquals(0, ExternalTools.run(List.of("mkfifo", fifo.toString())).exit());
        paths.add(fifo);
        if (ExternalTools.isRoot()) {
            Path dev = tmp.resolve("dev");
            assertEquals(0, ExternalTools.run(List.of("mknod", dev.toString(), "c", "259", "70000")).exit());
            paths.add(dev);
            Path blk = tmp.resolve("blk");
            assertEquals(0, ExternalTools.run(List.of("mknod", blk.toString(), "b", "8", "3")).exit());
            paths.add(blk);
            Path owned = tmp.resolve("owned");
            Files.write(owned, new byte[1]);
            assertEquals(0, ExternalTools.run(List.of("chown", "4000000000:123456", owned.toString())).exit());
            paths.add(owned);
        }
        for (Path p : paths) {
            HostStat s = HostStat.of(p);
            assertEquals(HostStat.viaMap(p), s, p + ": the stat object and the unix: view differ");
            // %f raw mode (hex), %i inode, %d device, %h links, %u uid, %g gid, %s size,
            // %t/%T device major/minor (hex), %Y/%Z mtime/ctime seconds.
            String[] g = ExternalTools.run(List.of("stat", "-c", "%f %i %d %h %u %g %s %t %T %Y %Z", p.toString()))
                    .out().trim().split(" ");
            assertEquals(Integer.parseInt(g[0], 16), s.mode(), p + " mode");
            assertEquals(Long.parseLong(g[1]), s.ino(), p + " inode");
            assertEquals(Long.parseLong(g[2]), s.dev(), p + " device");
            assertEquals(Integer.parseInt(g[3]), s.nlink(), p + " links");
            assertEquals(Long.parseLong(g[4]), s.uid() & 0xFFFFFFFFL, p + " uid");
            assertEquals(Long.parseLong(g[5]), s.gid() & 0xFFFFFFFFL, p + " gid");
            assertEquals(Long.parseLong(g[6]), s.size(), p + " size");
            long rdev = s.rdev();
            assertEquals(Long.parseLong(g[7], 16), ((rdev >>> 8) & 0xFFF) | ((rdev >>> 32) & ~0xFFFL), p + " major");
            assertEquals(Long.parseLong(g[8], 16), (rdev & 0xFF) | ((rdev >>> 12) & ~0xFFL), p + " minor");
            assertEquals(Long.parseLong(g[9]), s.mtime().toInstant().getEpochSecond(), p + " mtime");
            assertEquals(Long.parseLong(g[10]), s.ctime().toInstant().getEpochSecond(), p + " ctime");
            assertEquals(Files.getLastModifiedTime(p, java.nio.file.LinkOption.NOFOLLOW_LINKS), s.mtime(), p + " mtime ns");
        }
        assertEquals(HostStat.of(tmp.resolve("f0")).linkKey(), HostStat.of(tmp.resolve("hard")).linkKey(), "hard links share a key");

        // The walk's way: fstatat in the directory's descriptor says what lstat of the path says.
        assertTrue(HostFd.relative(), "the tests run with the dispatcher open, so the walk goes by descriptor");
        HostFd f = HostFd.open();
        int d = f.open(tmp, true);
        try {
            for (Path p : paths) {
                assertEquals(HostStat.of(p), f.stat(d, dev.kiln.ext4.Names.encode(RawPaths.name(p)), p), p + " by descriptor");
            }
            var missing = tmp.resolve("missing");
            assertThrows(java.nio.file.NoSuchFileException.class, () -> f.stat(d, "missing".getBytes(), missing));
            // O_NOFOLLOW: a symbolic link is not opened through, as by path.
            var sym = tmp.resolve("sym");
            assertThrows(java.io.IOException.class, () -> f.openAt(d, "sym".getBytes(), sym, false));
        } finally {
            f.close(d);
        }
    }

    @Test
    void aDirectorysNamesByDescriptorAreWhatGnuLsLists() throws Exception {
        long seed = Long.getLong("kiln.hoststat.seed", 17);
        Random r = new Random(seed);
        Path dir = Files.createDirectories(tmp.resolve("list"));
        for (int i = 0; i < 300; i++) {
            Files.write(dir.resolve("n" + Integer.toString(r.nextInt(1 << 30), 36)), new byte[0]);
        }
        Files.createDirectory(dir.resolve(".hidden"));
        Files.createDirectory(dir.resolve("..."));
        // A name that is not UTF-8, made by bytes (the JDK cannot name it; printf and touch can).
        assertEquals(0, ExternalTools.run(List.of("sh", "-c", "touch \"$(printf '" + dir + "/raw\\377x')\"")).exit());
        HostFd f = HostFd.open();
        int d = f.open(dir, true);
        List<String> ours;
        try {
            ours = new ArrayList<>(List.of(f.list(d, dir)));
            assertEquals(ours, new ArrayList<>(List.of(f.list(d, dir))), "listing twice gives the same (the descriptor is not moved)");
        } finally {
            f.close(d);
        }
        // GNU ls: -A all but . and .., -U unsorted, -b bytes that are not printable as \ooo escapes.
        List<String> gnu = new ArrayList<>();
        for (String line : ExternalTools.run(List.of("ls", "-A", "-U", "-1", "-b", dir.toString())).out().split("\n")) {
            if (!line.isEmpty()) {
                gnu.add(line);
            }
        }
        List<String> printed = new ArrayList<>();
        for (String n : ours) {
            StringBuilder sb = new StringBuilder();
            for (byte b : dev.kiln.ext4.Names.encode(n)) {
                int c = b & 0xFF;
                sb.append(c >= 0x80 ? String.format("\\%03o", c) : String.valueOf((char) c));
            }
            printed.add(sb.toString());
        }
        java.util.Collections.sort(gnu);
        java.util.Collections.sort(printed);
        assertEquals(gnu.size(), printed.size(), "as many names as ls lists");
        assertEquals(gnu, printed, "the names ls lists (seed " + seed + ")");
    }

    /**
     * Hard links are found by (device, inode): two keys are equal exactly when both are, and
     * equal keys hash alike (the methods are written out, not the record's own). Fields that a
     * careless combination would confuse (swapped, or summing to the same value) stay apart.
     */
    @Test
    void linkKeysAreEqualExactlyWhenDeviceAndInodeAre() {
        Random random = new Random(Long.getLong("kiln.test.seed", 5));
        java.util.Set<HostStat.LinkKey> set = new java.util.HashSet<>();
        for (int i = 0; i < 10_000; i++) {
            long dev = random.nextInt(4);
            long ino = random.nextInt(64);
            HostStat.LinkKey a = new HostStat.LinkKey(dev, ino);
            HostStat.LinkKey b = new HostStat.LinkKey(dev, ino);
            assertEquals(a, b);
            assertEquals(a.hashCode(), b.hashCode());
            set.add(a);
        }
        assertEquals(4 * 64, set.size(), "every (device, inode) pair once");
        assertTrue(!new HostStat.LinkKey(1, 2).equals(new HostStat.LinkKey(2, 1)), "swapped fields");
        assertTrue(!new HostStat.LinkKey(0, 32).equals(new HostStat.LinkKey(1, 1)), "ino * 31 + dev alike");
        assertTrue(!new HostStat.LinkKey(1, 2).equals(null) && !new HostStat.LinkKey(1, 2).equals("1:2"));
    }
}
