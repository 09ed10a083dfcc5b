package dev.kiln.ext4;

import java.io.ByteArrayOutputStream;

/**
 * POSIX ACLs arrive in the VFS xattr format (version 2: u32 header, then 8-byte entries of
 * tag u16, perm u16, id u32), as tar and getxattr carry them. ext4 stores its own compact
 * format (version 1: u32 header; entries for ACL_USER and ACL_GROUP keep the id, the others are
 * 4 bytes). See the kernel's {@code fs/ext4/acl.h}.
 */
final class PosixAcl {
    private static final int VFS_VERSION = 2;
    private static final int EXT4_VERSION = 1;
    private static final int ACL_USER = 0x02;
    private static final int ACL_GROUP = 0x08;

    private PosixAcl() {}

    static byte[] toDisk(byte[] v) {
        if (v.length < 4 || Le.get32(v, 0) != VFS_VERSION) {
            if (v.length >= 4 && Le.get32(v, 0) == EXT4_VERSION) {
                return v; // already in ext4's format
            }
            throw new IllegalArgumentException("POSIX ACL xattr has unknown version");
        }
        if ((v.length - 4) % 8 != 0) {
            throw new IllegalArgumentException("POSIX ACL xattr has a truncated entry");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] word = new byte[4];
        Le.put32(word, 0, EXT4_VERSION);
        out.writeBytes(word);
        for (int p = 4; p < v.length; p += 8) {
            int tag = Le.get16(v, p);
            byte[] e = new byte[tag == ACL_USER || tag == ACL_GROUP ? 8 : 4];
            System.arraycopy(v, p, e, 0, e.length);
            out.writeBytes(e);
        }
        return out.toByteArray();
    }

    static byte[] fromDisk(byte[] v) {
        if (v.length < 4 || Le.get32(v, 0) != EXT4_VERSION) {
            throw new CorruptImageException("POSIX ACL has unknown version");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] word = new byte[4];
        Le.put32(word, 0, VFS_VERSION);
        out.writeBytes(word);
        int p = 4;
        while (p + 4 <= v.length) {
            int tag = Le.get16(v, p);
            byte[] e = new byte[8];
            boolean full = tag == ACL_USER || tag == ACL_GROUP;
            System.arraycopy(v, p, e, 0, full ? Math.min(8, v.length - p) : 4);
            if (!full) {
                Le.put32(e, 4, 0xFFFFFFFFL);
            }
            out.writeBytes(e);
            p += full ? 8 : 4;
        }
        return out.toByteArray();
    }
}
