package dev.kiln.ext4;

/** An image that does not follow the ext4 format: names what is wrong and where. */
public class CorruptImageException extends RuntimeException {
    public CorruptImageException(String message) {
        super(message);
    }
}
