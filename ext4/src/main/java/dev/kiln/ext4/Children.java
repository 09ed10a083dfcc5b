package dev.kiln.ext4;

import java.util.Arrays;
import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * A directory's entries while the tree is built: names (the bytes the directory block will hold)
 * to values, in an open-addressing table whose names live in one byte array per directory.
 *
 * <p>A {@code HashMap<String, V>} cost ~90 bytes an entry (the String, its array, the map's
 * node, the table slot); here an entry costs its name's bytes plus one, and two table slots
 * (an int and a reference). At a million files that was most of the writer's memory.
 *
 * <p>Names are given as the writer's Strings ({@link Names}: UTF-8, with undecodable bytes kept
 * as escapes) and compared by their encoded bytes. {@link #sort()} puts the entries in the
 * String order of their names (a TreeMap's order, which fixed inode numbering before) and
 * keeps them dense; a later change returns to hashing.
 *
 * @param <V> the values (the writer's nodes)
 */
final class Children<V> implements Iterable<V> {
    private static final int EMPTY = 0;
    private static final int REMOVED = -1;

    /** Each name as its length (one byte, names are at most 255 bytes) then its bytes. */
    private byte[] names = new byte[16];
    private int namesEnd;
    /** Hashed: 1 + the offset of the slot's name in {@link #names}, or EMPTY or REMOVED. */
    private int[] slots = new int[4];
    private Object[] values = new Object[4];
    private int size;
    private int used;
    /** After {@link #sort()}: slots and values [0, size) hold the entries in name order. */
    private boolean sorted;

    int size() {
        return size;
    }

    boolean isEmpty() {
        return size == 0;
    }

    /**
     * @param name a name
     * @return its value, or null
     */
    @SuppressWarnings("unchecked")
    V get(String name) {
        byte[] key = Names.encode(name);
        int i = find(key);
        return i < 0 ? null : (V) values[i];
    }

    /**
     * @param name a name
     * @param value its value, not null
     * @return the value it replaced, or null
     */
    @SuppressWarnings("unchecked")
    V put(String name, V value) {
        unsort();
        byte[] key = Names.encode(name);
        if (key.length == 0 || key.length > 255) {
            throw new IllegalArgumentException("name of " + key.length + " bytes");
        }
        int i = find(key);
        if (i >= 0) {
            V old = (V) values[i];
            values[i] = value;
            return old;
        }
        if ((used + 1) * 4 > slots.length * 3) {
            rehash(size + 1);
        }
        int h = hash(key, 0, key.length) & (slots.length - 1);
        while (slots[h] > 0) {
            h = (h + 1) & (slots.length - 1);
        }
        if (slots[h] == EMPTY) {
            used++;
        }
        slots[h] = 1 + append(key);
        values[h] = value;
        size++;
        return null;
    }

    /**
     * @param name a name
     * @return the value removed, or null
     */
    @SuppressWarnings("unchecked")
    V remove(String name) {
        unsort();
        int i = find(Names.encode(name));
        if (i < 0) {
            return null;
        }
        V old = (V) values[i];
        slots[i] = REMOVED;
        values[i] = null;
        size--;
        return old;
    }

    void clear() {
        names = new byte[16];
        namesEnd = 0;
        slots = new int[4];
        values = new Object[4];
        size = 0;
        used = 0;
        sorted = false;
    }

    /** The values, in name order once sorted. */
    @Override
    public Iterator<V> iterator() {
        return new Iterator<>() {
            private int i = advance(0);

            private int advance(int from) {
                int limit = sorted ? size : slots.length;
                while (from < limit && slots[from] <= 0) {
                    from++;
                }
                return from;
            }

            @Override
            public boolean hasNext() {
                return i < (sorted ? size : slots.length);
            }

            @Override
            @SuppressWarnings("unchecked")
            public V next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                V v = (V) values[i];
                i = advance(i + 1);
                return v;
            }
        };
    }

    /** Puts the entries in name order, for {@link #name(int)} and {@link #value(int)}. */
    void sort() {
        if (sorted) {
            return;
        }
        int[] at = new int[size]; // the occupied slots
        int n = 0;
        for (int i = 0; i < slots.length; i++) {
            if (slots[i] > 0) {
                at[n++] = i;
            }
        }
        // A merge sort of the slots' indexes: Arrays.sort of boxed indexes with a comparator
        // lambda took three times as long in a cold JVM (800 names: 0.6 against 0.2 ms; a
        // million files sort all their names at close).
        mergeSort(at, new int[size], 0, size);
        int[] s = new int[Math.max(4, size)];
        Object[] v = new Object[s.length];
        for (int i = 0; i < size; i++) {
            s[i] = slots[at[i]];
            v[i] = values[at[i]];
        }
        slots = s;
        values = v;
        used = size;
        sorted = true;
    }

    /** The i-th name in order (after {@link #sort()}). */
    byte[] name(int i) {
        int off = slots[i] - 1;
        return Arrays.copyOfRange(names, off + 1, off + 1 + (names[off] & 0xFF));
    }

    /** The i-th value in order (after {@link #sort()}). */
    @SuppressWarnings("unchecked")
    V value(int i) {
        return (V) values[i];
    }

    /** The names in order, as Strings. */
    java.util.List<String> sortedNames() {
        sort();
        java.util.List<String> l = new java.util.ArrayList<>(size);
        for (int i = 0; i < size; i++) {
            l.add(Names.decode(name(i)));
        }
        return l;
    }

    private void unsort() {
        if (sorted) {
            sorted = false;
            rehash(size);
        }
    }

    private int find(byte[] key) {
        return find(key, 0, key.length);
    }

    /** The slot of the name {@code key[from, from + len)}, or -1. */
    private int find(byte[] key, int from, int len) {
        if (sorted) {
            String name = null;
            int lo = 0;
            int hi = size - 1;
            while (lo <= hi) {
                int mid = (lo + hi) >>> 1;
                int off = slots[mid] - 1;
                int c;
                if (ascii(names, off + 1, names[off] & 0xFF) && ascii(key, from, len)) {
                    c = Arrays.compare(names, off + 1, off + 1 + (names[off] & 0xFF), key, from, from + len);
                } else {
                    if (name == null) {
                        name = Names.decode(key, from, len);
                    }
                    c = Names.decode(names, off + 1, names[off] & 0xFF).compareTo(name);
                }
                if (c == 0) {
                    return mid;
                }
                if (c < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid - 1;
                }
            }
            return -1;
        }
        int mask = slots.length - 1;
        int h = hash(key, from, len) & mask;
        while (true) {
            int s = slots[h];
            if (s == EMPTY) {
                return -1;
            }
            if (s > 0 && equal(s - 1, key, from, len)) {
                return h;
            }
            h = (h + 1) & mask;
        }
    }

    private boolean equal(int off, byte[] key, int from, int len) {
        return (names[off] & 0xFF) == len && Arrays.equals(names, off + 1, off + 1 + len, key, from, from + len);
    }

    /**
     * The names' polynomial hash, then multiplied by 2^32 / phi: names that differ only in their
     * last characters (f000, f001, ...) have neighbouring polynomial hashes, which linear probing
     * turned into long runs of slots compared one by one (a fifth of a million-file build).
     */
    private static int hash(byte[] b, int from, int len) {
        int h = 0;
        for (int i = from; i < from + len; i++) {
            h = 31 * h + b[i];
        }
        h *= 0x9E3779B9;
        return h ^ (h >>> 15);
    }

    private int append(byte[] key) {
        int need = namesEnd + 1 + key.length;
        if (need > names.length) {
            names = Arrays.copyOf(names, Math.max(need, names.length + (names.length >> 1)));
        }
        int off = namesEnd;
        names[off] = (byte) key.length;
        System.arraycopy(key, 0, names, off + 1, key.length);
        namesEnd = need;
        return off;
    }

    /** A table for {@code entries} at most 3/4 full, names compacted (removed ones dropped). */
    private void rehash(int entries) {
        int cap = 4;
        while (entries * 4 > cap * 3) {
            cap <<= 1;
        }
        int[] oldSlots = slots;
        Object[] oldValues = values;
        int oldCount = sorted ? size : oldSlots.length;
        byte[] oldNames = names;
        names = new byte[Math.max(16, namesEnd)];
        namesEnd = 0;
        slots = new int[cap];
        values = new Object[cap];
        used = 0;
        for (int i = 0; i < oldCount; i++) {
            int s = oldSlots[i];
            if (s <= 0) {
                continue;
            }
            int off = s - 1;
            int len = oldNames[off] & 0xFF;
            int h = hash(oldNames, off + 1, len) & (cap - 1);
            while (slots[h] != EMPTY) {
                h = (h + 1) & (cap - 1);
            }
            int at = namesEnd;
            System.arraycopy(oldNames, off, names, at, 1 + len);
            namesEnd += 1 + len;
            slots[h] = 1 + at;
            values[h] = oldValues[i];
            used++;
        }
    }

    /** Sorts {@code a[lo..hi)}, slot indexes, by their names; {@code t} is scratch of the same length. */
    private void mergeSort(int[] a, int[] t, int lo, int hi) {
        if (hi - lo <= 16) {
            for (int i = lo + 1; i < hi; i++) {
                int v = a[i];
                int j = i - 1;
                while (j >= lo && compare(slots[a[j]] - 1, slots[v] - 1) > 0) {
                    a[j + 1] = a[j];
                    j--;
                }
                a[j + 1] = v;
            }
            return;
        }
        int mid = (lo + hi) >>> 1;
        mergeSort(a, t, lo, mid);
        mergeSort(a, t, mid, hi);
        if (compare(slots[a[mid - 1]] - 1, slots[a[mid]] - 1) <= 0) {
            return; // the halves are already in order
        }
        System.arraycopy(a, lo, t, lo, hi - lo);
        int i = lo;
        int j = mid;
        int k = lo;
        while (i < mid && j < hi) {
            a[k++] = compare(slots[t[i]] - 1, slots[t[j]] - 1) <= 0 ? t[i++] : t[j++];
        }
        System.arraycopy(t, i, a, k, mid - i);
        k += mid - i;
        System.arraycopy(t, j, a, k, hi - j);
    }

    /** String order of the names at two offsets (ASCII names compare as bytes, the rest decoded). */
    private int compare(int a, int b) {
        int la = names[a] & 0xFF;
        int lb = names[b] & 0xFF;
        if (ascii(names, a + 1, la) && ascii(names, b + 1, lb)) {
            return Arrays.compare(names, a + 1, a + 1 + la, names, b + 1, b + 1 + lb);
        }
        return Names.decode(names, a + 1, la).compareTo(Names.decode(names, b + 1, lb));
    }

    private static boolean ascii(byte[] b, int from, int len) {
        for (int i = from; i < from + len; i++) {
            if (b[i] < 0) {
                return false;
            }
        }
        return true;
    }
}
