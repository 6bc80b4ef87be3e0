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

    public static async IAsyncEnumerable<RunEvent> ReadAsync(IDocumentStore store, string run, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var prefix = run + "/";
        long after = 0, n = 0;
        List<(long LogSeq, RunEvent Event)>? imported = null;
        while (true)
        {
            await using var session = store.QuerySession();
            var page = await session.Events.QueryAllRawEvents()
                .Where(e => e.Sequence > after && e.StreamKey!.StartsWith(prefix))
                .OrderBy(e => e.Sequence).Take(5000).ToListAsync(ct);
            if (page.Count == 0) break;
            foreach (var e in page)
            {
                after = e.Sequence;
                if (e.Data is not JournalEntry { Rejected: false, Type: { } type, Data: { } data } entry) continue;
                // Akka leaves the representation's timestamp at 0; then the time Marten stored it is used.
                var ticks = entry.Timestamp != 0 ? entry.Timestamp : e.Timestamp.UtcTicks;
                var ev = new RunEvent(0, e.StreamKey![prefix.Length..], e.Version, DomainEventSerializer.FromJson(type, entry.SchemaVersion, data.Element), ticks);
                if (entry.LogSeq > 0) (imported ??= []).Add((entry.LogSeq, ev));
                else yield return ev with { Seq = ++n };
            }
        }
        // An imported run: its events come back in the order of the file they were imported from.
        if (imported is not null)
            foreach (var (_, ev) in imported.OrderBy(x => x.LogSeq)) yield return ev with { Seq = ++n };
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
