package dev.kiln.image;

/** A source that cannot be read: a missing file, an unknown format, a corrupt archive. */
public class InvalidSourceException extends RuntimeException {
    public InvalidSourceException(String message) {
        super(message);
    }

    public InvalidSourceException(String message, Throwable cause) {
        super(message, cause);
    }
}
