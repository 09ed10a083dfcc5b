package dev.kiln.ext4;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Extended attributes ({@code Documentation/filesystems/ext4/attributes.rst}).
 *
 * <p>Entries (16-byte header: name_len u8, name_index u8, value_offs u16, value_inum u32,
 * value_size u32, hash u32; then the name, padded to 4) follow a 4-byte magic in the inode's
 * spare space, or a 32-byte header in an external block; a zero u32 ends the list. Values are
 * packed from the end of the area downwards, each padded to 4 bytes. In the inode, value
 * offsets count from the first entry; in a block, from the block's start. Entries are sorted by
 * (index, name length, name): the kernel stops a block lookup early relying on that order.
 */
final class Xattr {
    static final long MAGIC = 0xEA020000L;
    static final int ENTRY_HEADER = 16;
    static final int BLOCK_HEADER = 32;

    /** More entries than this in one area means the chain is damaged (a 64 KiB block holds fewer). */
    static final int MAX_ENTRIES = 4096;

    /**
     * The one parser of {@code ext4_xattr_entry} chains (in-inode area and xattr blocks), shared
     * by the reader and the verifier. A chain ends at four zero bytes; {@link #next} returns
     * false there, or when the chain is damaged, with {@link #damage} saying how.
     */
    static final class Cursor {
        private final byte[] b;
        private final int end;
        private int next;
        private int count;
        /** Where the current entry starts. */
        int offset;
        int nameLen;
        int index;
        /** The value's offset, relative to the area's value base. */
        int valueOffs;
        long valueInum;
        long valueSize;
        long hash;
        /** Why the chain stopped early, or null when it ended properly. */
        String damage;

        Cursor(byte[] b, int start, int end) {
            this.b = b;
            this.next = start;
            this.end = end;
        }

        boolean next() {
            offset = next;
            if (offset + 4 > end || Le.get32(b, offset) == 0) {
                return false;
            }
            if (offset + ENTRY_HEADER > end || ++count > MAX_ENTRIES) {
                damage = "xattr entries overrun the area";
                return false;
            }
            nameLen = Le.get8(b, offset);
            index = Le.get8(b, offset + 1);
            valueOffs = Le.get16(b, offset + 2);
            valueInum = Le.get32(b, offset + 4);
            valueSize = Le.get32(b, offset + 8);
            hash = Le.get32(b, offset + 12);
            if (offset + ENTRY_HEADER + nameLen > end) {
                damage = "xattr entry at offset " + offset + ": name overruns the area";
                return false;
            }
            next = offset + ((ENTRY_HEADER + nameLen + 3) & ~3);
            return true;
        }

        /** The name's suffix (after the namespace prefix) as stored. */
        byte[] suffix() {
            return java.util.Arrays.copyOfRange(b, offset + ENTRY_HEADER, offset + ENTRY_HEADER + nameLen);
        }
    }

    /** A name split into its namespace index and suffix. */
    record Name(int index, byte[] suffix) {}

    record Attr(Name name, byte[] value) {
        int entrySize() {
            return (ENTRY_HEADER + name.suffix.length + 3) & ~3;
        }

        int valueSize() {
            return (value.length + 3) & ~3;
        }
    }

    private static final String[][] PREFIXES = {
        {"system.posix_acl_access", "2"}, {"system.posix_acl_default", "3"},
        {"system.richacl", "8"}, {"user.", "1"}, {"trusted.", "4"}, {"security.", "6"},
        {"system.", "7"},
    };

    private Xattr() {}

    static Name split(String full) {
        for (String[] p : PREFIXES) {
            boolean exact = !p[0].endsWith(".");
            if (exact ? full.equals(p[0]) : full.startsWith(p[0]) && full.length() > p[0].length()) {
                byte[] suffix = full.substring(p[0].length()).getBytes(StandardCharsets.UTF_8);
                if (suffix.length > 255) {
                    throw new IllegalArgumentException("xattr name longer than 255 bytes: " + full);
                }
                return new Name(Integer.parseInt(p[1]), suffix);
            }
        }
        throw new IllegalArgumentException("xattr namespace not supported by ext4: " + full);
    }

    static List<Attr> sorted(Map<String, byte[]> xattrs) {
        List<Attr> out = new ArrayList<>();
        for (Map.Entry<String, byte[]> e : xattrs.entrySet()) {
            Name n = split(e.getKey());
            byte[] v = e.getValue();
            if (n.index == 2 || n.index == 3) {
                v = PosixAcl.toDisk(v);
            }
            out.add(new Attr(n, v));
        }
        out.sort(Comparator.<Attr>comparingInt(a -> a.name.index)
                .thenComparingInt(a -> a.name.suffix.length)
                .thenComparing((a, b) -> java.util.Arrays.compare(a.name.suffix, b.name.suffix)));
        return out;
    }

    /** Bytes needed by these attributes in an area (entries + end marker + values). */
    static int areaSize(List<Attr> attrs) {
        int n = 4;
        for (Attr a : attrs) {
            n += a.entrySize() + a.valueSize();
        }
        return n;
    }

    /** The in-inode area: magic, entries, values; {@code space} bytes including the magic. */
    static byte[] encodeInInode(List<Attr> attrs, int space) {
        byte[] b = new byte[space];
        Le.put32(b, 0, MAGIC);
        encodeEntries(b, 4, space, attrs, 4, false);
        return b;
    }

    /** An external xattr block at physical block {@code blockNr}. */
    static byte[] encodeBlock(List<Attr> attrs, int blockSize, long blockNr, byte[] uuid, boolean csum) {
        return encodeBlock(attrs, blockSize, blockNr, uuid, csum, 1);
    }

    /** A block shared by {@code refcount} inodes with identical attributes, as the kernel shares them. */
    static byte[] encodeBlock(List<Attr> attrs, int blockSize, long blockNr, byte[] uuid, boolean csum, long refcount) {
        byte[] b = new byte[blockSize];
        Le.put32(b, 0, MAGIC);
        Le.put32(b, 4, refcount);
        Le.put32(b, 8, 1); // blocks
        long blockHash = encodeEntries(b, BLOCK_HEADER, blockSize, attrs, 0, true);
        Le.put32(b, 12, blockHash);
        if (csum) {
            long c = Crc32c.seeded(uuid).updateLe64(blockNr).update(b, 0, blockSize).raw();
            Le.put32(b, 16, c);
        }
        return b;
    }

    /**
     * Writes entries from {@code start} and values down from {@code end}; value offsets are
     * relative to {@code base}. Returns the block hash over the entry hashes.
     */
    private static long encodeEntries(byte[] b, int start, int end, List<Attr> attrs, int base, boolean hashes) {
        int p = start;
        int v = end;
        int blockHash = 0;
        for (Attr a : attrs) {
            int valueOffs = 0;
            if (a.value.length > 0) {
                v -= a.valueSize();
                System.arraycopy(a.value, 0, b, v, a.value.length);
                valueOffs = v - base;
            }
            Le.put8(b, p, a.name.suffix.length);
            Le.put8(b, p + 1, a.name.index);
            Le.put16(b, p + 2, valueOffs);
            Le.put32(b, p + 4, 0);
            Le.put32(b, p + 8, a.value.length);
            System.arraycopy(a.name.suffix, 0, b, p + ENTRY_HEADER, a.name.suffix.length);
            int hash = entryHash(a.name.suffix, a.value);
            Le.put32(b, p + 12, hashes ? hash & 0xFFFFFFFFL : 0);
            blockHash = (blockHash << 16) ^ (blockHash >>> 16) ^ hash;
            p += a.entrySize();
        }
        Le.put32(b, p, 0);
        return blockHash & 0xFFFFFFFFL;
    }

    /** The entry hash over the name (bytes as signed chars) and the value's le32 words. */
    static int entryHash(byte[] name, byte[] value) {
        int hash = 0;
        for (byte c : name) {
            hash = (hash << 5) ^ (hash >>> 27) ^ c;
        }
        int words = (value.length + 3) / 4;
        for (int i = 0; i < words; i++) {
            int w = 0;
            for (int k = 0; k < 4; k++) {
                int idx = i * 4 + k;
                int byt = idx < value.length ? value[idx] & 0xFF : 0;
                w |= byt << (8 * k);
            }
            hash = (hash << 16) ^ (hash >>> 16) ^ w;
        }
        return hash;
    }
}
