package dev.kiln.ext4;

import java.util.ArrayList;
import java.util.List;

/** Feature flag bits, named as in the kernel's {@code ext4.h} (super.rst, "s_feature_*"). */
final class Features {
    private Features() {}

    public static final int COMPAT_DIR_PREALLOC = 0x1;
    public static final int COMPAT_IMAGIC_INODES = 0x2;
    public static final int COMPAT_HAS_JOURNAL = 0x4;
    public static final int COMPAT_EXT_ATTR = 0x8;
    public static final int COMPAT_RESIZE_INODE = 0x10;
    public static final int COMPAT_DIR_INDEX = 0x20;
    public static final int COMPAT_SPARSE_SUPER2 = 0x200;
    public static final int COMPAT_FAST_COMMIT = 0x400;
    public static final int COMPAT_STABLE_INODES = 0x800;
    public static final int COMPAT_ORPHAN_FILE = 0x1000;

    public static final int INCOMPAT_COMPRESSION = 0x1;
    public static final int INCOMPAT_FILETYPE = 0x2;
    public static final int INCOMPAT_RECOVER = 0x4;
    public static final int INCOMPAT_JOURNAL_DEV = 0x8;
    public static final int INCOMPAT_META_BG = 0x10;
    public static final int INCOMPAT_EXTENTS = 0x40;
    public static final int INCOMPAT_64BIT = 0x80;
    public static final int INCOMPAT_MMP = 0x100;
    public static final int INCOMPAT_FLEX_BG = 0x200;
    public static final int INCOMPAT_EA_INODE = 0x400;
    public static final int INCOMPAT_DIRDATA = 0x1000;
    public static final int INCOMPAT_CSUM_SEED = 0x2000;
    public static final int INCOMPAT_LARGEDIR = 0x4000;
    public static final int INCOMPAT_INLINE_DATA = 0x8000;
    public static final int INCOMPAT_ENCRYPT = 0x10000;
    public static final int INCOMPAT_CASEFOLD = 0x20000;

    public static final int RO_COMPAT_SPARSE_SUPER = 0x1;
    public static final int RO_COMPAT_LARGE_FILE = 0x2;
    public static final int RO_COMPAT_BTREE_DIR = 0x4;
    public static final int RO_COMPAT_HUGE_FILE = 0x8;
    public static final int RO_COMPAT_GDT_CSUM = 0x10;
    public static final int RO_COMPAT_DIR_NLINK = 0x20;
    public static final int RO_COMPAT_EXTRA_ISIZE = 0x40;
    public static final int RO_COMPAT_QUOTA = 0x100;
    public static final int RO_COMPAT_BIGALLOC = 0x200;
    public static final int RO_COMPAT_METADATA_CSUM = 0x400;
    public static final int RO_COMPAT_READONLY = 0x1000;
    public static final int RO_COMPAT_PROJECT = 0x2000;
    /** Blocks may be shared between files (e2fsck -E unshare_blocks undoes it); the file system is read-only. */
    public static final int RO_COMPAT_SHARED_BLOCKS = 0x4000;
    public static final int RO_COMPAT_VERITY = 0x8000;
    public static final int RO_COMPAT_ORPHAN_PRESENT = 0x10000;

    private static final Object[][] NAMES = {
        {0, COMPAT_DIR_PREALLOC, "dir_prealloc"}, {0, COMPAT_IMAGIC_INODES, "imagic_inodes"},
        {0, COMPAT_HAS_JOURNAL, "has_journal"}, {0, COMPAT_EXT_ATTR, "ext_attr"},
        {0, COMPAT_RESIZE_INODE, "resize_inode"}, {0, COMPAT_DIR_INDEX, "dir_index"},
        {0, COMPAT_SPARSE_SUPER2, "sparse_super2"}, {0, COMPAT_FAST_COMMIT, "fast_commit"},
        {0, COMPAT_STABLE_INODES, "stable_inodes"}, {0, COMPAT_ORPHAN_FILE, "orphan_file"},
        {1, INCOMPAT_COMPRESSION, "compression"}, {1, INCOMPAT_FILETYPE, "filetype"},
        {1, INCOMPAT_RECOVER, "needs_recovery"}, {1, INCOMPAT_JOURNAL_DEV, "journal_dev"},
        {1, INCOMPAT_META_BG, "meta_bg"}, {1, INCOMPAT_EXTENTS, "extent"},
        {1, INCOMPAT_64BIT, "64bit"}, {1, INCOMPAT_MMP, "mmp"}, {1, INCOMPAT_FLEX_BG, "flex_bg"},
        {1, INCOMPAT_EA_INODE, "ea_inode"}, {1, INCOMPAT_DIRDATA, "dirdata"},
        {1, INCOMPAT_CSUM_SEED, "metadata_csum_seed"}, {1, INCOMPAT_LARGEDIR, "large_dir"},
        {1, INCOMPAT_INLINE_DATA, "inline_data"}, {1, INCOMPAT_ENCRYPT, "encrypt"},
        {1, INCOMPAT_CASEFOLD, "casefold"},
        {2, RO_COMPAT_SPARSE_SUPER, "sparse_super"}, {2, RO_COMPAT_LARGE_FILE, "large_file"},
        {2, RO_COMPAT_BTREE_DIR, "btree_dir"}, {2, RO_COMPAT_HUGE_FILE, "huge_file"},
        {2, RO_COMPAT_GDT_CSUM, "uninit_bg"}, {2, RO_COMPAT_DIR_NLINK, "dir_nlink"},
        {2, RO_COMPAT_EXTRA_ISIZE, "extra_isize"}, {2, RO_COMPAT_QUOTA, "quota"},
        {2, RO_COMPAT_BIGALLOC, "bigalloc"}, {2, RO_COMPAT_METADATA_CSUM, "metadata_csum"},
        {2, RO_COMPAT_READONLY, "read-only"}, {2, RO_COMPAT_PROJECT, "project"},
        {2, RO_COMPAT_SHARED_BLOCKS, "shared_blocks"},
        {2, RO_COMPAT_VERITY, "verity"}, {2, RO_COMPAT_ORPHAN_PRESENT, "orphan_present"},
    };

    /** Feature names in dumpe2fs order (compat, incompat, ro_compat; each by bit). */
    public static List<String> names(long compat, long incompat, long roCompat) {
        List<String> out = new ArrayList<>();
        long[] sets = {compat, incompat, roCompat};
        for (int kind = 0; kind < 3; kind++) {
            long remaining = sets[kind];
            for (Object[] n : NAMES) {
                if ((int) n[0] == kind && (sets[kind] & (int) n[1]) != 0) {
                    out.add((String) n[2]);
                    remaining &= ~(int) n[1];
                }
            }
            for (int bit = 0; bit < 32; bit++) {
                if ((remaining & (1L << bit)) != 0) {
                    out.add(new String[] {"FEATURE_C", "FEATURE_I", "FEATURE_R"}[kind] + bit);
                }
            }
        }
        return out;
    }
}
