package dev.kiln.ext4;

/** The kind of an inode, from the type bits of its mode. */
public enum FileType {
    /** A regular file. */
    REGULAR,
    /** A directory. */
    DIRECTORY,
    /** A symbolic link. */
    SYMLINK,
    /** A character device node. */
    CHAR_DEVICE,
    /** A block device node. */
    BLOCK_DEVICE,
    /** A named pipe. */
    FIFO,
    /** A Unix socket node. */
    SOCKET,
    /** A mode whose type bits name no known type (damage). */
    UNKNOWN;

    static FileType ofMode(int mode) {
        return switch (mode & Inode.S_IFMT) {
            case Inode.S_IFREG -> REGULAR;
            case Inode.S_IFDIR -> DIRECTORY;
            case Inode.S_IFLNK -> SYMLINK;
            case Inode.S_IFCHR -> CHAR_DEVICE;
            case Inode.S_IFBLK -> BLOCK_DEVICE;
            case Inode.S_IFIFO -> FIFO;
            case Inode.S_IFSOCK -> SOCKET;
            default -> UNKNOWN;
        };
    }

    static FileType ofDirEntry(int t) {
        return switch (t) {
            case Directory.TYPE_REG -> REGULAR;
            case Directory.TYPE_DIR -> DIRECTORY;
            case Directory.TYPE_SYMLINK -> SYMLINK;
            case Directory.TYPE_CHR -> CHAR_DEVICE;
            case Directory.TYPE_BLK -> BLOCK_DEVICE;
            case Directory.TYPE_FIFO -> FIFO;
            case Directory.TYPE_SOCK -> SOCKET;
            default -> UNKNOWN;
        };
    }

    /** The type code a directory entry stores for this type (0 for an unknown one). */
    int dirEntryType() {
        return switch (this) {
            case REGULAR -> Directory.TYPE_REG;
            case DIRECTORY -> Directory.TYPE_DIR;
            case SYMLINK -> Directory.TYPE_SYMLINK;
            case CHAR_DEVICE -> Directory.TYPE_CHR;
            case BLOCK_DEVICE -> Directory.TYPE_BLK;
            case FIFO -> Directory.TYPE_FIFO;
            case SOCKET -> Directory.TYPE_SOCK;
            default -> 0;
        };
    }

    /**
     * The character {@code ls -l} shows for this type.
     *
     * @return the type letter {@code ls -l} prints
     */
    public char lsChar() {
        return switch (this) {
            case REGULAR -> '-';
            case DIRECTORY -> 'd';
            case SYMLINK -> 'l';
            case CHAR_DEVICE -> 'c';
            case BLOCK_DEVICE -> 'b';
            case FIFO -> 'p';
            case SOCKET -> 's';
            default -> '?';
        };
    }
}
