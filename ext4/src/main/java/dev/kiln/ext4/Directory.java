package dev.kiln.ext4;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Directory blocks ({@code Documentation/filesystems/ext4/directory.rst}).
 *
 * <p>A linear block is a chain of {@code ext4_dir_entry_2} records (inode u32, rec_len u16,
 * name_len u8, file_type u8, name padded to 4 bytes); the last record's rec_len reaches the end
 * of the block, or of the 12-byte checksum tail (inode 0, rec_len 12, name_len 0, type 0xDE,
 * crc32c) when metadata_csum is on.
 *
 * <p>A directory of more than one block is hash-indexed: block 0 is a dx_root (fake "." and ".."
 * entries, an 8-byte dx_root_info, then limit/count and (hash, block) pairs), optional dx_node
 * blocks form a second index level, and leaves hold entries sorted by hash so each leaf covers
 * one hash range. A leaf that continues a run of equal hashes from the previous leaf has bit 0
 * of its index hash set.
 */
final class Directory {
    static final int TYPE_UNKNOWN = 0;
    static final int TYPE_REG = 1;
    static final int TYPE_DIR = 2;
    static final int TYPE_CHR = 3;
    static final int TYPE_BLK = 4;
    static final int TYPE_FIFO = 5;
    static final int TYPE_SOCK = 6;
    static final int TYPE_SYMLINK = 7;
    static final int TAIL_SIZE = 12;
    static final int TAIL_TYPE = 0xDE;
    static final int DX_ROOT_ENTRIES = 0x20;
    static final int DX_NODE_ENTRIES = 0x08;

    /** One name in a directory. */
    record Entry(byte[] name, long ino, int type) {}

    /** The result: the directory's blocks in logical order, and whether it is indexed. */
    record Blocks(List<byte[]> blocks, boolean indexed) {}

    private Directory() {}

    /** EXT4_DIR_REC_LEN(1): the smallest record the kernel and e2fsck accept. */
    static final int MIN_REC_LEN = 12;
    /** The fixed part of ext4_dir_entry_2 before the name. */
    static final int ENTRY_HEADER = 8;

    /**
     * The one parser of {@code ext4_dir_entry_2} chains, used by the reader and the verifier
     * alike (linear blocks, htree leaves, inline data). {@link #next} steps from record to
     * record; the fields describe the current one; {@link #wellFormed} says whether it may be
     * trusted (and so whether stepping past it is safe).
     */
    static final class Cursor {
        private final byte[] b;
        private final int end;
        private final int blockSize;
        private final boolean fileType;
        private int next;
        /** Where the current record starts. */
        int offset = -1;
        long inode;
        int recLen;
        int nameLen;
        /** The entry's file type byte, 0 when the file system does not store types. */
        int type;

        /**
         * A chain from {@code start} to {@code end}. Without the filetype feature the type byte is
         * the high byte of a 16-bit name length, as in ext2's original entry.
         */
        Cursor(byte[] b, int start, int end, int blockSize, boolean fileType) {
            this.b = b;
            this.next = start;
            this.end = end;
            this.blockSize = blockSize;
            this.fileType = fileType;
        }

        /** Moves to the next record; false when no whole header is left before the end. */
        boolean next() {
            if (next + ENTRY_HEADER > end) {
                offset = next;
                return false;
            }
            offset = next;
            inode = Le.get32(b, offset);
            recLen = Le.get16(b, offset + 4);
            if (blockSize >= 65536 && (recLen == 65535 || recLen == 0)) {
                recLen = 65536; // the kernel's encoding of a 64 KiB record
            }
            nameLen = Le.get8(b, offset + 6);
            type = Le.get8(b, offset + 7);
            if (!fileType) {
                nameLen |= type << 8;
                type = 0;
            }
            next = offset + Math.max(recLen, ENTRY_HEADER);
            return true;
        }

        /** The record's length is aligned, at least the minimum, inside the chain, and holds its name. */
        boolean wellFormed() {
            return recLen >= MIN_REC_LEN && (recLen & 3) == 0 && offset + recLen <= end
                    && ENTRY_HEADER + nameLen <= recLen;
        }

        /** True when the chain stopped before its end with a partial header left. */
        boolean truncated() {
            return offset < end;
        }

        /** The name as a string (bytes that are not UTF-8 kept, see {@link Names}). */
        String name() {
            return Names.decode(b, offset + ENTRY_HEADER, nameLen);
        }

        /** Where the name's bytes start in the block. */
        int nameOffset() {
            return offset + ENTRY_HEADER;
        }

        /** The record is in use (a live entry, not a deleted or padding one). */
        boolean live() {
            return inode != 0 && nameLen > 0;
        }
    }

    static int recLen(int nameLen) {
        return (ENTRY_HEADER + nameLen + 3) & ~3;
    }

    /**
     * Lays out a directory. {@code entries} excludes "." and ".."; the order of a linear
     * directory is the given order, an indexed one is ordered by hash.
     */
    static Blocks build(List<Entry> entries, long ino, long parentIno, int blockSize, boolean csum,
            boolean dirIndex, int hashVersion, int[] seed, byte[] uuid, int minBlocks) {
        int usable = blockSize - (csum ? TAIL_SIZE : 0);
        int total = 24;
        for (Entry e : entries) {
            total += recLen(e.name.length);
        }
        if (total <= usable || !dirIndex || minBlocks > 1) {
            return new Blocks(linear(entries, ino, parentIno, blockSize, csum, uuid, minBlocks), false);
        }
        return new Blocks(indexed(entries, ino, parentIno, blockSize, csum, hashVersion, seed, uuid), true);
    }

    private static List<byte[]> linear(List<Entry> entries, long ino, long parentIno, int blockSize,
            boolean csum, byte[] uuid, int minBlocks) {
        int usable = blockSize - (csum ? TAIL_SIZE : 0);
        List<byte[]> blocks = new ArrayList<>();
        byte[] cur = new byte[blockSize];
        int pos = 0;
        int last = -1;
        List<Entry> all = new ArrayList<>(entries.size() + 2);
        all.add(new Entry(new byte[] {'.'}, ino, TYPE_DIR));
        all.add(new Entry(new byte[] {'.', '.'}, parentIno, TYPE_DIR));
        all.addAll(entries);
        for (Entry e : all) {
            int len = recLen(e.name.length);
            if (pos + len > usable) {
                finishLeaf(cur, last, pos, usable, blockSize, ino, csum, uuid);
                blocks.add(cur);
                cur = new byte[blockSize];
                pos = 0;
                last = -1;
            }
            putEntry(cur, pos, e, len);
            last = pos;
            pos += len;
        }
        finishLeaf(cur, last, pos, usable, blockSize, ino, csum, uuid);
        blocks.add(cur);
        while (blocks.size() < minBlocks) {
            byte[] empty = new byte[blockSize];
            finishLeaf(empty, -1, 0, usable, blockSize, ino, csum, uuid);
            blocks.add(empty);
        }
        return blocks;
    }

    private static void putEntry(byte[] b, int pos, Entry e, int recLen) {
        Le.put32(b, pos, e.ino);
        Le.put16(b, pos + 4, recLen);
        Le.put8(b, pos + 6, e.name.length);
        Le.put8(b, pos + 7, e.type);
        System.arraycopy(e.name, 0, b, pos + 8, e.name.length);
    }

    /** Stretches the last record to the end of the usable area and writes the checksum tail. */
    private static void finishLeaf(byte[] b, int last, int pos, int usable, int blockSize, long ino,
            boolean csum, byte[] uuid) {
        if (last < 0) {
            // An empty block: one unused record spanning it.
            Le.put32(b, 0, 0);
            Le.put16(b, 4, usable);
        } else {
            Le.put16(b, last + 4, usable - last);
        }
        if (csum) {
            int t = blockSize - TAIL_SIZE;
            Le.put32(b, t, 0);
            Le.put16(b, t + 4, TAIL_SIZE);
            Le.put8(b, t + 6, 0);
            Le.put8(b, t + 7, TAIL_TYPE);
            long c = Crc32c.inodeSeeded(uuid, ino, 0).update(b, 0, t).raw();
            Le.put32(b, t + 8, c);
        }
    }

    /**
     * The entries' indexes in hash order: by major hash, then minor hash, then name. The majors
     * and indexes are packed into longs and sorted as primitives (a list of records sorted by
     * compareTo took most of the time of a cold JVM's close on directories of thousands of
     * names); the rare entries with the same major are ordered after.
     */
    static int[] hashOrder(List<Entry> entries, int hashVersion, int[] seed, long[] majors) {
        int n = entries.size();
        long[] keys = new long[n];
        long[] minors = new long[n];
        for (int i = 0; i < n; i++) {
            Entry e = entries.get(i);
            long[] h = DxHash.hash(e.name, 0, e.name.length, hashVersion, seed);
            // The major is unsigned 32-bit: shifted to signed so that longs sort in its order.
            keys[i] = ((h[0] - 0x80000000L) << 32) | i;
            minors[i] = h[1];
        }
        Arrays.sort(keys);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = (int) keys[i];
            majors[i] = (keys[i] >> 32) + 0x80000000L;
        }
        for (int from = 0; from < n; ) {
            int to = from + 1;
            while (to < n && majors[to] == majors[from]) {
                to++;
            }
            for (int i = from + 1; i < to; i++) { // a collision: by minor hash, then name
                int v = order[i];
                int j = i - 1;
                while (j >= from && tieOrder(entries, minors, order[j], v) > 0) {
                    order[j + 1] = order[j];
                    j--;
                }
                order[j + 1] = v;
            }
            from = to;
        }
        return order;
    }

    private static int tieOrder(List<Entry> entries, long[] minors, int a, int b) {
        int c = Long.compare(minors[a], minors[b]);
        return c != 0 ? c : Arrays.compare(entries.get(a).name, entries.get(b).name);
    }

    private static List<byte[]> indexed(List<Entry> entries, long ino, long parentIno, int blockSize,
            boolean csum, int hashVersion, int[] seed, byte[] uuid) {
        long[] majors = new long[entries.size()];
        int[] order = hashOrder(entries, hashVersion, seed, majors);

        int usable = blockSize - (csum ? TAIL_SIZE : 0);
        // Pack leaves densely; remember each leaf's starting hash (with the collision bit).
        List<byte[]> leaves = new ArrayList<>();
        long[] leafHash = new long[16];
        int leafCount = 0;
        byte[] cur = null;
        int pos = 0;
        int last = -1;
        long prevMajor = -1;
        for (int k = 0; k < order.length; k++) {
            Entry entry = entries.get(order[k]);
            long major = majors[k];
            int len = recLen(entry.name.length);
            if (cur == null || pos + len > usable) {
                if (cur != null) {
                    finishLeaf(cur, last, pos, usable, blockSize, ino, csum, uuid);
                }
                cur = new byte[blockSize];
                leaves.add(cur);
                long start = major;
                if (major == prevMajor) {
                    start |= 1;
                }
                if (leafCount == leafHash.length) {
                    leafHash = Arrays.copyOf(leafHash, leafCount * 2);
                }
                leafHash[leafCount++] = start;
                pos = 0;
                last = -1;
            }
            putEntry(cur, pos, entry, len);
            last = pos;
            pos += len;
            prevMajor = major;
        }
        finishLeaf(cur, last, pos, usable, blockSize, ino, csum, uuid);

        int tail = csum ? 1 : 0;
        int rootLimit = (blockSize - DX_ROOT_ENTRIES) / 8 - tail;
        int nodeLimit = (blockSize - DX_NODE_ENTRIES) / 8 - tail;
        List<byte[]> out = new ArrayList<>();
        byte[] root = new byte[blockSize];
        out.add(root);
        // dx_root's fake "." and ".." records; ".." spans the rest of the block.
        putEntry(root, 0, new Entry(new byte[] {'.'}, ino, TYPE_DIR), 12);
        putEntry(root, 12, new Entry(new byte[] {'.', '.'}, parentIno, TYPE_DIR), blockSize - 12);
        Le.put32(root, 24, 0);
        Le.put8(root, 28, hashVersion >= DxHash.LEGACY_UNSIGNED ? hashVersion - 3 : hashVersion);
        Le.put8(root, 29, 8);
        Le.put8(root, 31, 0);
        if (leaves.size() <= rootLimit) {
            Le.put8(root, 30, 0);
            long[] hashes = Arrays.copyOf(leafHash, leafCount);
            writeDx(root, DX_ROOT_ENTRIES, rootLimit, hashes, 1, ino, csum, uuid);
            out.addAll(leaves);
            return out;
        }
        int nodes = (int) Layout.ceilDiv(leaves.size(), nodeLimit);
        if (nodes > rootLimit) {
            throw new CapacityExceededException("directory with " + entries.size()
                    + " entries needs a third htree level (large_dir)", 0, 0, 0, 0);
        }
        Le.put8(root, 30, 1);
        long[] nodeHashes = new long[nodes];
        int firstLeafBlock = 1 + nodes;
        for (int n = 0; n < nodes; n++) {
            byte[] node = new byte[blockSize];
            Le.put32(node, 0, 0);
            Le.put16(node, 4, blockSize);
            int from = n * nodeLimit;
            int to = Math.min(leaves.size(), from + nodeLimit);
            long[] hashes = new long[to - from];
            for (int i = from; i < to; i++) {
                hashes[i - from] = leafHash[i];
            }
            nodeHashes[n] = hashes[0];
            writeDx(node, DX_NODE_ENTRIES, nodeLimit, hashes, firstLeafBlock + from, ino, csum, uuid);
            out.add(node);
        }
        writeDx(root, DX_ROOT_ENTRIES, rootLimit, nodeHashes, 1, ino, csum, uuid);
        out.addAll(leaves);
        return out;
    }

    /**
     * Writes limit/count and the (hash, block) pairs at {@code at}; the first pair's hash slot
     * holds limit and count instead. Blocks are consecutive from {@code firstBlock}.
     */
    private static void writeDx(byte[] b, int at, int limit, long[] hashes, long firstBlock, long ino,
            boolean csum, byte[] uuid) {
        Le.put16(b, at, limit);
        Le.put16(b, at + 2, hashes.length);
        Le.put32(b, at + 4, firstBlock);
        for (int i = 1; i < hashes.length; i++) {
            Le.put32(b, at + 8 * i, hashes[i]);
            Le.put32(b, at + 8 * i + 4, firstBlock + i);
        }
        if (csum) {
            int tail = at + limit * 8;
            Le.put32(b, tail, 0);
            long c = Crc32c.inodeSeeded(uuid, ino, 0).update(b, 0, at + hashes.length * 8)
                    .update(b, tail, 4).updateZeros(4).raw();
            Le.put32(b, tail + 4, c);
        }
    }
}
