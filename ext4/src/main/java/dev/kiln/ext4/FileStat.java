package dev.kiln.ext4;

import java.time.Instant;

/**
 * What {@link Ext4Reader} reports about an inode.
 *
 * @param mode permission bits (07777)
 * @param major device major number (devices only)
 * @param minor device minor number (devices only)
 */
public record FileStat(long ino, FileType type, int mode, long uid, long gid, long size, int links,
        Instant atime, Instant mtime, Instant ctime, Instant crtime, int major, int minor, long flags,
        long blocks512) {

    /**
     * Whether this is a directory.
     *
     * @return true for a directory
     */
    public boolean isDirectory() {
        return type == FileType.DIRECTORY;
    }

    /**
     * Whether this is a regular file.
     *
     * @return true for a regular file
     */
    public boolean isRegular() {
        return type == FileType.REGULAR;
    }

    /**
     * Whether this is a symbolic link.
     *
     * @return true for a symlink
     */
    public boolean isSymlink() {
        return type == FileType.SYMLINK;
    }

    /**
     * The mode as {@code ls -l} prints it, e.g. {@code -rwsr-xr-x}.
     *
     * @return the mode as {@code ls -l} prints it
     */
    public String modeString() {
        char[] c = new char[10];
        c[0] = type.lsChar();
        String rwx = "rwxrwxrwx";
        for (int i = 0; i < 9; i++) {
            c[i + 1] = (mode & (1 << (8 - i))) != 0 ? rwx.charAt(i) : '-';
        }
        if ((mode & 04000) != 0) {
            c[3] = c[3] == 'x' ? 's' : 'S';
        }
        if ((mode & 02000) != 0) {
            c[6] = c[6] == 'x' ? 's' : 'S';
        }
        if ((mode & 01000) != 0) {
            c[9] = c[9] == 'x' ? 't' : 'T';
        }
        return new String(c);
    }
}
