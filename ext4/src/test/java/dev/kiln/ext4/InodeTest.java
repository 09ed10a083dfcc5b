package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class InodeTest {
    @Test
    void clearResetsEveryFieldToANewInodesValue() throws Exception {
        Inode fresh = new Inode();
        Inode used = new Inode();
        int changed = 0;
        for (java.lang.reflect.Field f : Inode.class.getDeclaredFields()) {
            if (java.lang.reflect.Modifier.isStatic(f.getModifiers())) {
                continue;
            }
            f.setAccessible(true);
            Class<?> t = f.getType();
            if (t == int.class) {
                f.setInt(used, 7);
            } else if (t == long.class) {
                f.setLong(used, 7);
            } else if (t == byte[].class && java.lang.reflect.Modifier.isFinal(f.getModifiers())) {
                java.util.Arrays.fill((byte[]) f.get(used), (byte) 7);
            } else if (t == byte[].class) {
                f.set(used, new byte[] {7});
            } else {
                throw new AssertionError("InodeTest does not know how to set " + f + "; teach it and Inode.clear()");
            }
            changed++;
        }
        assertTrue(changed > 20, "fields set: " + changed);
        used.clear();
        for (java.lang.reflect.Field f : Inode.class.getDeclaredFields()) {
            if (!java.lang.reflect.Modifier.isStatic(f.getModifiers())) {
                Object a = f.get(fresh);
                Object b = f.get(used);
                if (a instanceof byte[] x) {
                    assertArrayEquals(x, (byte[]) b, f.getName());
                } else {
                    assertEquals(a, b, f.getName());
                }
            }
        }
    }

    @Test
    void timesBeyond2038UseEpochBits() {
        long[] seconds = {0, 1, 1700000000L, 0x7FFFFFFFL, 0x80000000L, 0xFFFFFFFFL, 0x100000000L, 15000000000L, -1, -1000000};
        for (long s : seconds) {
            long extra = Inode.extra(s, 999_999_999);
            assertEquals(s, Inode.seconds(s & 0xFFFFFFFFL, extra), "seconds " + s);
            assertEquals(999_999_999, Inode.nanos(extra));
        }
    }

    @Test
    void layoutAndChecksum() {
        Inode in = new Inode();
        in.mode = Inode.S_IFREG | 0644;
        in.uid = 0x12345678L;
        in.gid = 0x9ABCDEF0L;
        in.size = 5L << 32 | 7;
        in.links = 3;
        in.blocks512 = 1L << 33;
        in.mtime = 1700000000L;
        in.mtimeNs = 5;
        byte[] uuid = new byte[16];
        byte[] b = in.encode(256, 12, uuid, true);
        assertEquals(Inode.S_IFREG | 0644, Le.get16(b, 0));
        assertEquals(0x5678, Le.get16(b, 2));
        assertEquals(0x1234, Le.get16(b, 0x78));
        assertEquals(0xDEF0, Le.get16(b, 0x18));
        assertEquals(0x9ABC, Le.get16(b, 0x7A));
        assertEquals(7, Le.get32(b, 4));
        assertEquals(5, Le.get32(b, 0x6C));
        assertEquals(2, Le.get16(b, 0x74));
        assertEquals(32, Le.get16(b, 0x80));
        assertEquals(5 << 2, Le.get32(b, 0x88));
        long stored = Le.get16(b, 0x7C) | (long) Le.get16(b, 0x82) << 16;
        b[0x7C] = b[0x7D] = b[0x82] = b[0x83] = 0;
        assertEquals(Crc32c.inodeSeeded(uuid, 12, 0).update(b).raw(), stored);
    }

    @Test
    void encodingInPlaceWritesTheSameBytesAndOnlyThem() {
        Inode in = new Inode();
        in.mode = Inode.S_IFDIR | 0755;
        in.uid = 1000;
        in.size = 4096;
        in.links = 2;
        in.ctime = 1700000001L;
        in.crtimeNs = 7;
        in.inlineXattrs = new byte[] {0, 0, 2, (byte) 0xEA, 1, 2, 3, 4};
        byte[] uuid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        byte[] table = new byte[1024];
        in.encodeInto(table, 512, 256, 35, uuid, true);
        assertArrayEquals(in.encode(256, 35, uuid, true), Arrays.copyOfRange(table, 512, 768));
        assertArrayEquals(new byte[512], Arrays.copyOfRange(table, 0, 512));
        assertArrayEquals(new byte[256], Arrays.copyOfRange(table, 768, 1024));
    }
}
