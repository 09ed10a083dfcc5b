package dev.kiln.image.registry;

/** A registry, network or authentication failure (exit code 4). */
public class RegistryException extends RuntimeException {
    private final int status;

    public RegistryException(String message, int status) {
        super(message);
        this.status = status;
    }

    public RegistryException(String message, Throwable cause) {
        super(message, cause);
        this.status = 0;
    }

    /** The HTTP status that caused it, or 0 for network errors. */
    public int status() {
        return status;
    }
}
