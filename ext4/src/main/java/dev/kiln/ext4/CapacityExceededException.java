package dev.kiln.ext4;

/**
 * The content does not fit in the image: says what was needed and what was available, so a
 * caller can retry with a larger size.
 */
public class CapacityExceededException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    /** Blocks the content needs. */
    private final long blocksNeeded;
    /** Inodes the content needs. */
    private final long inodesNeeded;
    /** Blocks the file system has for content. */
    private final long blocksAvailable;
    /** Inodes the file system has. */
    private final long inodesAvailable;

    /**
     * Creates the exception.
     *
     * @param message what did not fit
     * @param blocksNeeded blocks the content needs
     * @param inodesNeeded inodes the content needs
     * @param blocksAvailable blocks the file system has for content
     * @param inodesAvailable inodes the file system has
     */
    public CapacityExceededException(String message, long blocksNeeded, long inodesNeeded,
            long blocksAvailable, long inodesAvailable) {
        super(message);
        this.blocksNeeded = blocksNeeded;
        this.inodesNeeded = inodesNeeded;
        this.blocksAvailable = blocksAvailable;
        this.inodesAvailable = inodesAvailable;
    }

    /**
     * Blocks the content needs.
     *
     * @return a block count
     */
    public long blocksNeeded() {
        return blocksNeeded;
    }

    /**
     * Inodes the content needs.
     *
     * @return an inode count
     */
    public long inodesNeeded() {
        return inodesNeeded;
    }

    /**
     * Blocks the file system has for content.
     *
     * @return a block count
     */
    public long blocksAvailable() {
        return blocksAvailable;
    }

    /**
     * Inodes the file system has.
     *
     * @return an inode count
     */
    public long inodesAvailable() {
        return inodesAvailable;
    }
}
