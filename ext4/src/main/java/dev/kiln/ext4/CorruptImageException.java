package dev.kiln.ext4;

/** An image that does not follow the ext4 format: names what is wrong and where. */
public class CorruptImageException extends RuntimeException {
    /**
     * Creates the exception.
     *
     * @param message what is damaged, naming the image and the structure
     */
    public CorruptImageException(String message) {
        super(message);
    }
}
