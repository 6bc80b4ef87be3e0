using System.Text.Json;
using ActorSim.Persistence.Serialization;

namespace ActorSim.Persistence.Journal;

/// <summary>One journal entry as a Marten event: the event's stream is the persistenceId and its
/// stream version the sequence number. A domain event is stored as JSON under its alias and schema
/// version; anything else (Akka internals, test payloads) through Akka's serialization, base64.</summary>
public sealed class JournalEntry
{
    /// <summary>Domain event alias (stage2_fault_resolved, …), or null for an Akka-serialized payload.</summary>
    public string? Type { get; set; }
    public int SchemaVersion { get; set; }
    public EventData? Data { get; set; }
    public int SerializerId { get; set; }
    public string? Manifest { get; set; }
    public string? Bytes { get; set; }
    public string[] Tags { get; set; } = [];
    public string WriterGuid { get; set; } = "";
    /// <summary>The simulation's time of the write (the actor system's scheduler's Now; since 2026-11-28,
    /// earlier builds stored Akka's IPersistentRepresentation.Timestamp, which it leaves 0).</summary>
    public long Timestamp { get; set; }
    /// <summary>A placeholder for a rejected write's sequence number (its payload could not be
    /// serialized): it keeps stream version = sequence number and is never replayed.</summary>
    public bool Rejected { get; set; }
    /// <summary>For an imported run: the event's seq in the file it came from, so an export gives the
    /// file's global order back (an import appends stream by stream in one transaction).</summary>
    public long LogSeq { get; set; }
    /// <summary>The domain event this entry was encoded from, in memory only (never stored): the inline
    /// projection reads it instead of parsing <see cref="Data"/> back. Null for an entry read from the
    /// database.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public ActorSim.Domain.IDomainEvent? Decoded { get; set; }

    /// <summary>A domain event's entry written outside the journal (an import, the bench's recorded run).</summary>
    public static JournalEntry ForEvent(ActorSim.Domain.IDomainEvent e, string writerGuid, long timestamp = 0, long logSeq = 0)
    {
        var alias = DomainEventSerializer.AliasOf(e.GetType());
        return new JournalEntry
        {
            Type = alias, SchemaVersion = DomainEventSerializer.VersionOf(alias), Data = EventData.Of(e),
            Timestamp = timestamp, WriterGuid = writerGuid, LogSeq = logSeq,
        };
    }
}

/// <summary>How an event's JSON is packed in a journal entry.</summary>
public enum Packing : byte
{
    /// <summary>Stored as it is.</summary>
    None,
    /// <summary>zlib (entries written before LZ4 replaced it, and large events in a JSON entry).</summary>
    Zlib,
    /// <summary>LZ4 (<c>LZ4Pickler</c>: a header with the length, then the block), in a binary entry.</summary>
    Lz4,
    /// <summary>Not JSON at all: a decision event as <see cref="CompactDecisions"/> writes it, in a
    /// binary entry (format 3); its JSON is made again from the event when asked for.</summary>
    Compact,
}

/// <summary>A domain event's JSON in a journal entry. Written, it holds the UTF-8 bytes the event was
/// serialized to once, and the entry's binary record (<see cref="JournalEntryBinary"/>) carries them as
/// they are (no second serialization of the event, no parse into a JsonElement on the write path); an
/// entry of an earlier build, stored as JSON, is read back through the converter below.
/// <para><b>Packed when large.</b> An event whose JSON is longer than <see cref="PackAbove"/> bytes — a
/// batch of decision records, ~1.1 KB each with its full inputs — is stored compressed: a 64-decision
/// batch's 67 KB become ~5.4 KB (the records of a batch repeat their policy, memslot and VMA).
/// PostgreSQL parses every jsonb it receives character by character, and the batch events' bodies had
/// become the largest part of its time per journal commit (docs/BENCHMARKS.md). Since 2026-11-27 a
/// binary entry packs with LZ4, which unpacks ~6× and packs ~2× faster than the zlib of earlier
/// entries (0.2–0.4 against 1.2–1.6 µs a decision record unpacked: a sixth to a third of a replay's
/// time per decision from the database); those stay zlib and read as before. In a JSON entry a packed
/// event is a zlib base64 string instead of an object (a domain event is always a JSON object, so a
/// string is never ambiguous); smaller events stay plain JSON.</para>
/// <para><b>Decision events compact</b> (<see cref="Of"/>): not their JSON but a binary record of
/// their decisions (<see cref="CompactDecisions"/>, <see cref="Packing.Compact"/>); their JSON is
/// written again from the event when something asks for it.</para></summary>
[System.Text.Json.Serialization.JsonConverter(typeof(EventDataConverter))]
public sealed class EventData
{
    /// <summary>Events whose JSON is longer than this are stored packed.</summary>
    public const int PackAbove = 4096;

    private byte[]? _utf8; // for a compact event, made from it when first asked for
    private readonly byte[]? _packed;
    private readonly Packing _packing;
    private JsonElement? _element;

    public EventData(byte[] utf8)
    {
        _utf8 = utf8;
        if (utf8.Length > PackAbove) (_packed, _packing) = (K4os.Compression.LZ4.LZ4Pickler.Pickle(utf8, K4os.Compression.LZ4.LZ4Level.L00_FAST), Packing.Lz4);
    }

    public EventData(JsonElement element) => _element = element;

    /// <summary>A domain event to store: a decision event compact (<see cref="CompactDecisions"/>),
    /// any other as its JSON (packed when large).</summary>
    public static EventData Of(ActorSim.Domain.IDomainEvent e) =>
        CompactDecisions.Supports(e) ? new EventData(null, CompactDecisions.Write(e), Packing.Compact) : new EventData(DomainEventSerializer.ToUtf8(e));

    public JsonElement Element => _element ??= JsonElement.Parse(Utf8);

    /// <summary>Whether this event is stored packed (written, or read back from a packed entry).</summary>
    public bool Packed => _packed is not null;

    /// <summary>How it is stored packed, if it is.</summary>
    public Packing Packing => _packing;

    internal void WriteTo(Utf8JsonWriter writer)
    {
        // A JSON entry's packed form is zlib: that is what its readers (this build's and earlier ones)
        // unpack. A compact event goes in as its JSON, packed if large, as any other.
        if (_packing == Packing.Compact && Utf8.Length > PackAbove) writer.WriteBase64StringValue(ZlibPack(Utf8));
        else if (_packing == Packing.Compact) writer.WriteRawValue(Utf8, skipInputValidation: true);
        else if (_packed is not null) writer.WriteBase64StringValue(_packing == Packing.Zlib ? _packed : ZlibPack(_utf8!));
        else if (_utf8 is not null) writer.WriteRawValue(_utf8, skipInputValidation: true);
        else _element!.Value.WriteTo(writer);
    }

    /// <summary>The domain event stored under <paramref name="alias"/> at schema <paramref name="version"/>:
    /// from its compact record (a decision event, <see cref="CompactDecisions"/>), from the UTF-8 bytes
    /// when it has them (a binary entry; decision events of earlier builds then by their written
    /// template), else from the element (a JSON entry of an earlier build).</summary>
    public ActorSim.Domain.IDomainEvent Decode(string alias, int version) =>
        _packing == Packing.Compact ? CompactDecisions.Read(alias, version, _packed)
        : _utf8 is not null ? DomainEventSerializer.FromUtf8(alias, version, _utf8) : DomainEventSerializer.FromJson(alias, version, Element);

    /// <summary>The event's JSON as UTF-8 (unpacked; for a compact event, written from it).</summary>
    public byte[] Utf8 => _packing == Packing.Compact
        ? _utf8 ??= DomainEventSerializer.ToUtf8(CompactDecisions.Read(_packed))
        : _utf8 ?? JsonSerializer.SerializeToUtf8Bytes(_element!.Value);

    /// <summary>As <see cref="JournalEntryBinary"/> stores it: the packed bytes if packed, else the JSON.</summary>
    internal (byte[] Bytes, Packing Packing) Stored => _packed is not null ? (_packed, _packing) : (Utf8, Packing.None);

    /// <summary>From <see cref="Stored"/>: a packed event is unpacked, a plain one kept as it is.</summary>
    internal static EventData FromStored(byte[] bytes, Packing packing) => packing switch
    {
        Packing.None => new(bytes, null, packing),
        Packing.Compact => new(null, bytes, packing),
        _ => new(Unpack(bytes, packing), bytes, packing),
    };

    /// <summary>Packed bytes unpacked.</summary>
    internal static byte[] Unpack(ReadOnlySpan<byte> packed, Packing packing) => packing switch
    {
        Packing.Zlib => ZlibUnpack(packed.ToArray()),
        Packing.Lz4 => K4os.Compression.LZ4.LZ4Pickler.Unpickle(packed),
        _ => throw new ArgumentOutOfRangeException(nameof(packing)),
    };

    private EventData(byte[]? utf8, byte[]? packed, Packing packing)
    {
        _utf8 = utf8;
        _packed = packed;
        _packing = packing;
    }

    internal static EventData ReadFrom(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String) return new EventData(JsonElement.ParseValue(ref reader));
        return FromStored(reader.GetBytesFromBase64(), Packing.Zlib);
    }

    /// <summary>The event's JSON as UTF-8 from the stored <c>Data</c> value's JSON text (as PostgreSQL
    /// prints it): an object is returned as it is, a packed string unpacked.</summary>
    public static byte[] Utf8Of(byte[] storedJson)
    {
        var reader = new Utf8JsonReader(storedJson);
        if (!reader.Read() || reader.TokenType != JsonTokenType.String) return storedJson;
        return ZlibUnpack(reader.GetBytesFromBase64());
    }

    private static byte[] ZlibPack(byte[] utf8)
    {
        var output = new MemoryStream(utf8.Length / 8 + 64);
        using (var z = new System.IO.Compression.ZLibStream(output, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            z.Write(utf8);
        return output.ToArray();
    }

    private static byte[] ZlibUnpack(byte[] packed)
    {
        using var z = new System.IO.Compression.ZLibStream(new MemoryStream(packed), System.IO.Compression.CompressionMode.Decompress);
        var output = new MemoryStream(packed.Length * 12);
        z.CopyTo(output);
        return output.ToArray();
    }
}

internal sealed class EventDataConverter : System.Text.Json.Serialization.JsonConverter<EventData>
{
    public override EventData Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => EventData.ReadFrom(ref reader);

    public override void Write(Utf8JsonWriter writer, EventData value, JsonSerializerOptions options) => value.WriteTo(writer);
}

/// <summary>How a <see cref="JournalEntry"/> is stored: in <c>mt_events.bdata</c>, through Marten's
/// binary events (<c>data</c> holds Marten's <c>{}</c> placeholder). The domain event inside is its
/// JSON (UTF-8, or packed as <see cref="EventData"/> says), a decision event compact (since the round
/// after the evening's of 2026-11-27); the entry's other fields around it are
/// a small binary record instead of a JSON object.
/// <para>PostgreSQL parsed every jsonb body it received character by character (<c>jsonb_recv</c>):
/// 23 % of its time in a PersistAll bench after the decision rows went to one statement per commit
/// (perf), and printed it back as text for every row a replay read. A <c>bytea</c> is copied.</para>
/// <para>Layout, little-endian: format byte (2; 3 when the data is a compact decision event, the same
/// layout with flag 128; 1 before LZ4, the same layout without flag 64, still read: a build that knows
/// an older format refuses a newer record by its format instead of reading its data as JSON); flags
/// (1 rejected, 2 type, 4 manifest, 8 bytes, 16 data, 32 data packed with zlib, 64 data packed with
/// LZ4, 128 data compact, <see cref="CompactDecisions"/>); type; schema version, serializer id (7-bit encoded); manifest; bytes;
/// writer guid; timestamp, log seq (8 bytes each); tag count (7-bit) and tags; data length (7-bit) and
/// data. Strings are 7-bit length-prefixed UTF-8; an absent field is not written. Entries written
/// before this format are JSON (<c>bdata</c> null) and read as before.</para></summary>
public sealed class JournalEntryBinary : Marten.Events.IEventBinarySerializer
{
    public const byte Format = 2;
    /// <summary>The format of a record whose data is a compact decision event (flag 128): a build that
    /// knows only format 2 refuses it by its format instead of reading it as JSON.</summary>
    public const byte CompactFormat = 3;
    private const byte Rejected = 1, HasType = 2, HasManifest = 4, HasBytes = 8, HasData = 16, DataZlib = 32, DataLz4 = 64, DataCompact = 128;

    public byte[] Serialize(Type type, object value) => Write((JournalEntry)value);

    public object Deserialize(Type type, byte[] bytes) => Read(bytes);

    public static byte[] Write(JournalEntry e)
    {
        var data = e.Data?.Stored;
        var size = 64 + (data?.Bytes.Length ?? 0) + 3 * ((e.Type?.Length ?? 0) + (e.Manifest?.Length ?? 0) + (e.Bytes?.Length ?? 0) + e.WriterGuid.Length);
        var output = new MemoryStream(size);
        using (var w = new BinaryWriter(output, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(data?.Packing == Packing.Compact ? CompactFormat : Format);
            w.Write((byte)((e.Rejected ? Rejected : 0) | (e.Type is null ? 0 : HasType) | (e.Manifest is null ? 0 : HasManifest) | (e.Bytes is null ? 0 : HasBytes)
                | (data is null ? 0 : HasData) | (data?.Packing switch { Packing.Zlib => DataZlib, Packing.Lz4 => DataLz4, Packing.Compact => DataCompact, _ => 0 })));
            if (e.Type is not null) w.Write(e.Type);
            w.Write7BitEncodedInt(e.SchemaVersion);
            w.Write7BitEncodedInt(e.SerializerId);
            if (e.Manifest is not null) w.Write(e.Manifest);
            if (e.Bytes is not null) w.Write(e.Bytes);
            w.Write(e.WriterGuid);
            w.Write(e.Timestamp);
            w.Write(e.LogSeq);
            w.Write7BitEncodedInt(e.Tags.Length);
            foreach (var t in e.Tags) w.Write(t);
            if (data is { } d)
            {
                w.Write7BitEncodedInt(d.Bytes.Length);
                w.Write(d.Bytes);
            }
        }
        return output.ToArray();
    }

    /// <summary>An entry back from its record; a record of another format, or cut short, is refused
    /// (<see cref="InvalidDataException"/>).</summary>
    public static JournalEntry Read(byte[] bytes)
    {
        var v = View(bytes);
        var e = new JournalEntry
        {
            Rejected = v.Rejected,
            Type = v.Type,
            SchemaVersion = v.SchemaVersion,
            SerializerId = v.SerializerId,
            Manifest = v.HasManifest ? Utf8.GetString(v.Manifest) : null,
            Bytes = v.HasBytes ? Utf8.GetString(v.Bytes) : null,
            WriterGuid = Utf8.GetString(v.WriterGuid),
            Timestamp = v.Timestamp,
            LogSeq = v.LogSeq,
        };
        var tags = new string[v.TagCount];
        var c = new Cursor(v.Tags);
        for (var i = 0; i < tags.Length; i++) tags[i] = Utf8.GetString(c.String());
        e.Tags = tags;
        if (v.HasData) e.Data = EventData.FromStored(v.Data.ToArray(), v.Packing);
        return e;
    }

    /// <summary>A record's fields where they lie in it, nothing copied but the type's name: what a
    /// replay reads of each row (<c>RunLog</c>), without the entry object, a stream and reader per row and
    /// two copies of the event's bytes.</summary>
    internal static EntryView View(ReadOnlySpan<byte> bytes)
    {
        var c = new Cursor(bytes);
        var format = c.Byte();
        if (format is not (1 or Format or CompactFormat)) throw new InvalidDataException($"journal entry: unknown binary format {format}");
        var flags = c.Byte();
        if (format == 1 && (flags & DataLz4) != 0) throw new InvalidDataException("journal entry: LZ4 data in a format 1 record");
        if ((format == CompactFormat) != ((flags & DataCompact) != 0)) throw new InvalidDataException($"journal entry: compact data in a format {format} record, or a format 3 record without it");
        var v = new EntryView
        {
            Rejected = (flags & Rejected) != 0,
            HasManifest = (flags & HasManifest) != 0,
            HasBytes = (flags & HasBytes) != 0,
            HasData = (flags & HasData) != 0,
            Packing = (flags & (DataZlib | DataLz4 | DataCompact)) switch
            {
                0 => Packing.None,
                DataZlib => Packing.Zlib,
                DataLz4 => Packing.Lz4,
                DataCompact => Packing.Compact,
                _ => throw new InvalidDataException("journal entry: data packed more than one way"),
            },
        };
        v.Type = (flags & HasType) != 0 ? Aliases.Intern(c.String()) : null;
        v.SchemaVersion = c.Int7();
        v.SerializerId = c.Int7();
        if (v.HasManifest) v.Manifest = c.String();
        if (v.HasBytes) v.Bytes = c.String();
        v.WriterGuid = c.String();
        v.Timestamp = c.Int64();
        v.LogSeq = c.Int64();
        v.TagCount = c.Int7();
        var tagsAt = c.Position;
        for (var i = 0; i < v.TagCount; i++) c.String();
        v.Tags = bytes[tagsAt..c.Position];
        if (v.HasData) v.Data = c.Take(c.Int7());
        if (c.Position != bytes.Length)
            throw new InvalidDataException($"journal entry: {bytes.Length - c.Position} bytes after the binary record");
        return v;
    }

    private static System.Text.Encoding Utf8 => System.Text.Encoding.UTF8;

    /// <summary>A type name as one string per alias (the few a journal holds), not one per row.</summary>
    private static readonly BytesMemo<string> Aliases = new(64);

    /// <summary>Reads what <see cref="BinaryWriter"/> wrote: bytes, 7-bit encoded ints, little-endian
    /// longs, 7-bit length-prefixed UTF-8 strings. Past the end is "cut short".</summary>
    private ref struct Cursor(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;

        public int Position { get; private set; }

        public ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || n > _bytes.Length - Position) throw new InvalidDataException($"journal entry: binary record cut short ({_bytes.Length} bytes)");
            var s = _bytes.Slice(Position, n);
            Position += n;
            return s;
        }

        public byte Byte() => Take(1)[0];

        public long Int64() => System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(Take(8));

        public int Int7()
        {
            uint value = 0;
            for (var shift = 0; shift < 35; shift += 7)
            {
                var b = Byte();
                value |= (uint)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return (int)value;
            }
            throw new InvalidDataException("journal entry: a 7-bit encoded number longer than 5 bytes");
        }

        public ReadOnlySpan<byte> String() => Take(Int7());
    }
}

/// <summary>A binary journal entry's fields, read in place (<see cref="JournalEntryBinary.View"/>).</summary>
internal ref struct EntryView
{
    public bool Rejected, HasManifest, HasBytes, HasData;
    public string? Type;
    public int SchemaVersion, SerializerId, TagCount;
    public ReadOnlySpan<byte> Manifest, Bytes, WriterGuid, Tags, Data;
    public long Timestamp, LogSeq;
    public Packing Packing;

    /// <summary>The event's JSON, unpacked if it is packed (written from the event if it is compact).</summary>
    public readonly ReadOnlySpan<byte> Json => Packing switch
    {
        Packing.None => Data,
        Packing.Compact => DomainEventSerializer.ToUtf8(Event()),
        _ => EventData.Unpack(Data, Packing),
    };

    /// <summary>The domain event (an entry with a type and data).</summary>
    public readonly ActorSim.Domain.IDomainEvent Event() => Packing == Packing.Compact
        ? CompactDecisions.Read(Type!, SchemaVersion, Data)
        : DomainEventSerializer.FromUtf8(Type!, SchemaVersion, Json);
}

/// <summary>Per persistenceId: messages up to DeletedTo are deleted (DeleteMessagesTo). Events are
/// not removed, so the highest sequence number never goes down.</summary>
public sealed class JournalMetadata
{
    public string Id { get; set; } = "";
    public long DeletedTo { get; set; }
}

/// <summary>One snapshot; Id is "persistenceId/sequenceNr", so saving the same sequence number again
/// overwrites it.</summary>
public sealed class SnapshotDocument
{
    public string Id { get; set; } = "";
    public string PersistenceId { get; set; } = "";
    public long SequenceNr { get; set; }
    /// <summary>UTC ticks (a plain number: no time-zone conversion on the way in or out).</summary>
    public long TimestampTicks { get; set; }
    public int SerializerId { get; set; }
    public string? Manifest { get; set; }
    public string Bytes { get; set; } = "";
}
