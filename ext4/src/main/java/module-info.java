/**
 * Writes, reads and checks ext4 file system images in pure Java, with the JDK only.
 *
 * <p>{@link dev.kiln.ext4.Ext4Writer} streams a tree into a new image (journal, metadata
 * checksums, htree directories, resize room) that {@code e2fsck -fn} finds clean;
 * {@link dev.kiln.ext4.Ext4Reader} reads any ext2/3/4 image read-only; and
 * {@link dev.kiln.ext4.Ext4Verifier} checks one as {@code e2fsck -fn} does. On-disk structures,
 * allocation and checksums are internal to the package.
 */
module dev.kiln.ext4 {
    // ExtendedOpenOption.DIRECT (O_DIRECT writes) lives there.
    requires jdk.unsupported;

    exports dev.kiln.ext4;
}
