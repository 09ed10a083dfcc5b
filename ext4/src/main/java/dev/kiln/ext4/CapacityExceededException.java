package dev.kiln.ext4;

/**
 * The content does not fit in the image: says what was needed and what was available, so a
 * caller can retry with a larger size.
 */
public class CapacityExceededException extends RuntimeException {
    private final long blocksNeeded;
    private final long inodesNeeded;
    private final long blocksAvailable;
    private final long inodesAvailable;

    public CapacityExceededException(String message, long blocksNeeded, long inodesNeeded,
            long blocksAvailable, long inodesAvailable) {
        super(message);
        this.blocksNeeded = blocksNeeded;
        this.inodesNeeded = inodesNeeded;
        this.blocksAvailable = blocksAvailable;
        this.inodesAvailable = inodesAvailable;
    }

    public long blocksNeeded() {
        return blocksNeeded;
    }

    public long inodesNeeded() {
        return inodesNeeded;
    }

    public long blocksAvailable() {
        return blocksAvailable;
    }

    public long inodesAvailable() {
        return inodesAvailable;
    }
}
