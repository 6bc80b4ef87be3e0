using System.Text.Json;

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
    /// <summary>IPersistentRepresentation.Timestamp as written.</summary>
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
}

/// <summary>A domain event's JSON in a journal entry. Written, it holds the UTF-8 bytes the event was
/// serialized to once, and Marten copies them into the document as they are (no second serialization
/// of the event, no parse into a JsonElement on the write path); read back, it holds the parsed element.
/// <para><b>Packed when large.</b> An event whose JSON is longer than <see cref="PackAbove"/> bytes — a
/// batch of decision records, ~1.1 KB each with its full inputs — is stored as a JSON string instead
/// of an object: the JSON's UTF-8 bytes, zlib-compressed, in base64 (a 64-decision batch's 62.6 KB
/// become 4.5 KB: the records of a batch repeat their policy, memslot and VMA). PostgreSQL parses every jsonb it receives
/// character by character, and the batch events' bodies had become the largest part of its time per
/// journal commit (docs/BENCHMARKS.md). A domain event is always a JSON object, so a string is never
/// ambiguous; smaller events stay plain JSON, readable in SQL.</para></summary>
[System.Text.Json.Serialization.JsonConverter(typeof(EventDataConverter))]
public sealed class EventData
{
    /// <summary>Events whose JSON is longer than this are stored packed.</summary>
    public const int PackAbove = 4096;

    private readonly byte[]? _utf8;
    private readonly byte[]? _packed;
    private JsonElement? _element;

    public EventData(byte[] utf8)
    {
        _utf8 = utf8;
        if (utf8.Length > PackAbove) _packed = Pack(utf8);
    }

    public EventData(JsonElement element) => _element = element;

    public JsonElement Element => _element ??= JsonElement.Parse(_utf8);

    /// <summary>Whether this event is stored packed (written, or read back from a packed entry).</summary>
    public bool Packed => _packed is not null;

    internal void WriteTo(Utf8JsonWriter writer)
    {
        if (_packed is not null) writer.WriteBase64StringValue(_packed);
        else if (_utf8 is not null) writer.WriteRawValue(_utf8, skipInputValidation: true);
        else _element!.Value.WriteTo(writer);
    }

    private EventData(byte[] utf8, byte[] packed)
    {
        _utf8 = utf8;
        _packed = packed;
    }

    internal static EventData ReadFrom(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String) return new EventData(JsonElement.ParseValue(ref reader));
        var packed = reader.GetBytesFromBase64();
        return new EventData(Unpack(packed), packed);
    }

    /// <summary>The event's JSON as UTF-8 from the stored <c>Data</c> value's JSON text (as PostgreSQL
    /// prints it): an object is returned as it is, a packed string unpacked.</summary>
    public static byte[] Utf8Of(byte[] storedJson)
    {
        var reader = new Utf8JsonReader(storedJson);
        if (!reader.Read() || reader.TokenType != JsonTokenType.String) return storedJson;
        return Unpack(reader.GetBytesFromBase64());
    }

    private static byte[] Pack(byte[] utf8)
    {
        var output = new MemoryStream(utf8.Length / 8 + 64);
        using (var z = new System.IO.Compression.ZLibStream(output, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            z.Write(utf8);
        return output.ToArray();
    }

    private static byte[] Unpack(byte[] packed)
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
