package dev.kiln.ext4;

/** An entry the writer cannot accept: a bad path, a conflict, a missing hard-link target. */
public class EntryException extends RuntimeException {
    private final String path;

    public EntryException(String path, String message) {
        super(path + ": " + message);
        this.path = path;
    }

    /** The path of the entry at fault, as the caller gave it. */
    public String path() {
        return path;
    }
}
