package dev.kiln.ext4;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A quota file in the kernel's quota tree format (vfsv0/vfsv1, {@code quota_tree.h} and
 * {@code quotaio_v2.h}): a header, then a radix tree of 1 KiB blocks, four levels deep, indexed
 * by the id's bytes, whose leaves hold one record per user, group or project with its usage.
 * Read-only; only what a check needs: the recorded inode count and space per id.
 */
final class QuotaFile {
    /** dqh_magic of the three quota types. */
    static final long[] MAGICS = {0xd9c01f11L, 0xd9c01927L, 0xd9c03f14L};
    static final int QT_BLKSIZE = 1024;
    static final int QT_TREEOFF = 1;
    static final int QT_TREEDEPTH = 4;
    static final int V2_HEADER = 8;
    static final int DQDBHEADER = 16;

    /** One id's recorded usage. */
    record Usage(long inodes, long space) {}

    private QuotaFile() {}

    /** The usage recorded per id, or throws naming what is wrong. */
    static Map<Long, Usage> read(InputStream in, int type, String what) throws IOException {
        byte[] f = in.readAllBytes();
        if (f.length < QT_BLKSIZE * 2) {
            throw new CorruptImageException(what + ": quota file of " + f.length + " bytes is too short");
        }
        long magic = Le.get32(f, 0);
        long version = Le.get32(f, 4);
        if (magic != MAGICS[type]) {
            throw new CorruptImageException(String.format("%s: bad quota file magic 0x%08X vs expected 0x%08X", what, magic,
                    MAGICS[type]));
        }
        if (version > 1) {
            throw new CorruptImageException(what + ": quota format version " + version + " is not one kiln reads");
        }
        boolean r1 = version == 1;
        int entrySize = r1 ? 72 : 48;
        Map<Long, Usage> out = new TreeMap<>();
        Set<Long> seen = new HashSet<>();
        walk(f, QT_TREEOFF, 0, r1, entrySize, out, seen, what);
        return out;
    }

    private static void walk(byte[] f, long blk, int depth, boolean r1, int entrySize, Map<Long, Usage> out,
            Set<Long> seen, String what) {
        long off = blk * QT_BLKSIZE;
        if (blk <= 0 || off + QT_BLKSIZE > f.length) {
            throw new CorruptImageException(what + ": quota tree points to block " + blk + " outside the file");
        }
        if (depth == QT_TREEDEPTH) {
            if (!seen.add(blk)) {
                return;
            }
            int count = (QT_BLKSIZE - DQDBHEADER) / entrySize;
            for (int i = 0; i < count; i++) {
                int e = (int) off + DQDBHEADER + i * entrySize;
                if (unused(f, e, entrySize)) {
                    continue;
                }
                long id = Le.get32(f, e);
                long inodes = r1 ? Le.get64(f, e + 24) : Le.get32(f, e + 16);
                long space = r1 ? Le.get64(f, e + 48) : Le.get64(f, e + 32);
                out.put(id, new Usage(inodes, space));
            }
            return;
        }
        for (int i = 0; i < QT_BLKSIZE / 4; i++) {
            long ref = Le.get32(f, (int) off + 4 * i);
            if (ref != 0) {
                walk(f, ref, depth + 1, r1, entrySize, out, seen, what);
            }
        }
    }

    private static boolean unused(byte[] f, int off, int len) {
        for (int i = off; i < off + len; i++) {
            if (f[i] != 0) {
                return false;
            }
        }
        return true;
    }
}
