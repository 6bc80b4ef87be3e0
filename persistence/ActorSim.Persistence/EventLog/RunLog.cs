using System.Text.Json;
using ActorSim.Domain;
using ActorSim.Persistence.Journal;
using ActorSim.Persistence.ReadSide;
using ActorSim.Persistence.Serialization;
using Marten;

namespace ActorSim.Persistence.EventLog;

/// <summary>One event of a run in global order: stream without the run prefix, its version, the
/// domain event, and the time it was written (UTC ticks).</summary>
public sealed record RunEvent(long Seq, string Stream, long Version, IDomainEvent Event, long TimestampTicks)
{
    public string Type => DomainEventSerializer.AliasOf(Event.GetType());
}

/// <summary>Reads a run's events from the database in global order (the run is finished or its
/// events are read as they stand; numbering restarts at 1 for the run).</summary>
public static class RunLog
{
    public static async Task<RunInfo?> InfoAsync(IDocumentStore store, string run, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        return await session.LoadAsync<RunInfo>(run, ct);
    }

    public static async Task<IReadOnlyList<RunInfo>> RunsAsync(IDocumentStore store, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        return (await session.Query<RunInfo>().ToListAsync(ct)).OrderBy(r => r.Started).ThenBy(r => r.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>The run's events in global order. Read with one SQL query straight from Marten's event
    /// table, rows streamed as PostgreSQL produces them (it works on the next rows while these are
    /// decoded), the stored <see cref="JournalEntry"/> taken apart by PostgreSQL and the domain event's
    /// JSON handed to the serializer as UTF-8 — rather than pages of Marten's event query, which
    /// deserialized each whole entry and then the event again (bench, replay from the database).</summary>
    public static async IAsyncEnumerable<RunEvent> ReadAsync(IDocumentStore store, string run, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var prefix = run + "/";
        long n = 0;
        List<(long LogSeq, RunEvent Event)>? imported = null;
        await using var session = store.QuerySession();
        var conn = (Npgsql.NpgsqlConnection)session.Connection!;
        if (conn.State != System.Data.ConnectionState.Open) await conn.OpenAsync(ct);
        await using var cmd = new Npgsql.NpgsqlCommand(
            "select e.stream_id, e.version, e.timestamp, j.\"Type\", j.\"SchemaVersion\", j.\"Timestamp\", coalesce(j.\"LogSeq\", 0), j.\"Data\"::text " +
            $"from {store.Options.Events.DatabaseSchemaName}.mt_events e " +
            // the stored entry taken apart once per row (each data->>'…' would read the whole jsonb again)
            "cross join lateral jsonb_to_record(e.data) as j(\"Type\" text, \"SchemaVersion\" int, \"Timestamp\" bigint, \"LogSeq\" bigint, \"Rejected\" boolean, \"Data\" jsonb) " +
            "where e.seq_id >= @first and starts_with(e.stream_id, @prefix) and e.is_archived = false " +
            "and j.\"Type\" is not null and coalesce(j.\"Rejected\", false) = false " +
            "order by e.seq_id", conn);
        cmd.Parameters.AddWithValue("first", await FirstSeqAsync(conn, store.Options.Events.DatabaseSchemaName, prefix, ct));
        cmd.Parameters.AddWithValue("prefix", prefix);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            // Akka leaves the representation's timestamp at 0; then the time Marten stored it is used.
            var ticks = reader.IsDBNull(5) || reader.GetInt64(5) == 0 ? reader.GetFieldValue<DateTimeOffset>(2).UtcTicks : reader.GetInt64(5);
            var data = reader.GetFieldValue<byte[]>(7); // the text's UTF-8 bytes as they came, no string in between
            var ev = new RunEvent(0, reader.GetString(0)[prefix.Length..], reader.GetInt64(1),
                DomainEventSerializer.FromUtf8(reader.GetString(3), reader.IsDBNull(4) ? 0 : reader.GetInt32(4), data), ticks);
            var logSeq = reader.GetInt64(6);
            if (logSeq > 0) (imported ??= []).Add((logSeq, ev));
            else yield return ev with { Seq = ++n };
        }
        // An imported run: its events come back in the order of the file they were imported from.
        if (imported is not null)
            foreach (var (_, ev) in imported.OrderBy(x => x.LogSeq)) yield return ev with { Seq = ++n };
    }

    /// <summary>Where the run's events begin in global order: the first event of any of its streams
    /// (a stream's versions start at 1; events are never removed). Reading from there instead of from
    /// the beginning keeps the first page from scanning every earlier run's events (3.5 M rows in the
    /// bench schema took 2 s before the first of a run's events came back).</summary>
    private static async Task<long> FirstSeqAsync(Npgsql.NpgsqlConnection conn, string schema, string prefix, CancellationToken ct)
    {
        await using var cmd = new Npgsql.NpgsqlCommand(
            $"select min(e.seq_id) from {schema}.mt_streams s join {schema}.mt_events e on e.stream_id = s.id and e.version = 1 where starts_with(s.id, @prefix)", conn);
        cmd.Parameters.AddWithValue("prefix", prefix);
        return await cmd.ExecuteScalarAsync(ct) is long first ? first : long.MaxValue;
    }

    public static async Task<bool> RunExistsAsync(IDocumentStore store, string run, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        if (await session.LoadAsync<RunInfo>(run, ct) is not null) return true;
        var prefix = run + "/";
        return await session.Events.QueryAllRawEvents().AnyAsync(e => e.StreamKey!.StartsWith(prefix), ct);
    }

    /// <summary>Writes a run's events and info in one transaction (import): all or nothing.</summary>
    public static async Task WriteAsync(IDocumentStore store, RunInfo info, IReadOnlyList<RunEvent> events, CancellationToken ct = default)
    {
        await using var session = store.LightweightSession();
        session.Store(info);
        foreach (var stream in events.GroupBy(e => e.Stream, StringComparer.Ordinal))
        {
            var entries = stream.OrderBy(e => e.Version).Select(e =>
            {
                var alias = e.Type;
                return (object)new JournalEntry
                {
                    Type = alias, SchemaVersion = DomainEventSerializer.VersionOf(alias), Data = new EventData(DomainEventSerializer.ToUtf8(e.Event)),
                    Timestamp = e.TimestampTicks, WriterGuid = "import", LogSeq = e.Seq,
                };
            }).ToArray();
            session.Events.Append($"{info.Id}/{stream.Key}", entries.Length, entries);
        }
        await session.SaveChangesAsync(ct);
    }
}
