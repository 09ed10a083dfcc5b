package dev.kiln.image;

/**
 * The output cannot be written where it was asked for: the disk is full, the directory is
 * read-only or not writable. A problem of the environment, not of the input or of kiln.
 */
public final class OutputException extends RuntimeException {
    public OutputException(String message, Throwable cause) {
        super(message, cause);
    }
}
