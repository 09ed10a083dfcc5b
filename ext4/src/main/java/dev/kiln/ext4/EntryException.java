package dev.kiln.ext4;

/** An entry the writer cannot accept: a bad path, a conflict, a missing hard-link target. */
public class EntryException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    /** The entry's path in the image. */
    private final String path;

    /**
     * Creates the exception.
     *
     * @param path the entry's path in the image
     * @param message what is wrong with it
     */
    public EntryException(String path, String message) {
        super(path + ": " + message);
        this.path = path;
    }

    /**
     * The path of the entry at fault, as the caller gave it.
     *
     * @return an absolute path
     */
    public String path() {
        return path;
    }
}
