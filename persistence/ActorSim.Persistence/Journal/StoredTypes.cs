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
/// of the event, no parse into a JsonElement on the write path); read back, it holds the parsed element.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(EventDataConverter))]
public sealed class EventData
{
    private readonly byte[]? _utf8;
    private JsonElement? _element;

    public EventData(byte[] utf8) => _utf8 = utf8;
    public EventData(JsonElement element) => _element = element;

    public JsonElement Element => _element ??= JsonElement.Parse(_utf8);

    internal void WriteTo(Utf8JsonWriter writer)
    {
        if (_utf8 is not null) writer.WriteRawValue(_utf8, skipInputValidation: true);
        else _element!.Value.WriteTo(writer);
    }
}

internal sealed class EventDataConverter : System.Text.Json.Serialization.JsonConverter<EventData>
{
    public override EventData Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        new(JsonElement.ParseValue(ref reader));

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
