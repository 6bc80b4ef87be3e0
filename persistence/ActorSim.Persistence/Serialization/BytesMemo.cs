namespace ActorSim.Persistence.Serialization;

/// <summary>Values by the exact UTF-8 bytes they were read from, for the few that repeat on every row or
/// record read back (type aliases, VM names, enum names, memslot and VMA objects): a short list searched
/// in order, up to <paramref name="capacity"/> entries, replaced whole when one is added, so readers on
/// other threads (a file's lines are decoded on every core) keep the list they read and write nothing.
/// Identical bytes mean the same value: the caller adds only what it read from exactly those bytes.</summary>
internal sealed class BytesMemo<T>(int capacity)
{
    private (byte[] Bytes, T Value)[] _entries = [];
    private readonly Lock _adding = new();

    public bool Full => _entries.Length >= capacity;

    public bool TryGet(ReadOnlySpan<byte> bytes, out T value)
    {
        foreach (var (b, v) in _entries)
            if (bytes.SequenceEqual(b))
            {
                value = v;
                return true;
            }
        value = default!;
        return false;
    }

    public void Add(ReadOnlySpan<byte> bytes, T value)
    {
        if (Full) return;
        var copy = bytes.ToArray();
        lock (_adding)
            if (!Full && !_entries.Any(e => e.Bytes.AsSpan().SequenceEqual(copy))) _entries = [.. _entries, (copy, value)];
    }
}

internal static class BytesMemos
{
    /// <summary>One string per distinct UTF-8 bytes (type aliases, VM names): made and added on first sight.</summary>
    public static string Intern(this BytesMemo<string> memo, ReadOnlySpan<byte> utf8)
    {
        if (memo.TryGet(utf8, out var s)) return s;
        s = System.Text.Encoding.UTF8.GetString(utf8);
        memo.Add(utf8, s);
        return s;
    }
}
