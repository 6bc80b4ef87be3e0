using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kvm;
using ActorSim.Persistence.Journal;
using ActorSim.Persistence.Serialization;
using JasperFx.Events;
using Marten;
using Marten.Events.Projections;

namespace ActorSim.Persistence.ReadSide;

/// <summary>Inline Marten projection over the journal: the <see cref="DecisionRows"/> of each stage-2
/// fault decision event (a row of arrays per batch event, per run of single decisions of a stream and
/// per group of a run's lone single decisions in a commit; a row for a single decision alone in its
/// run) and a
/// <see cref="ViolationRow"/> per invariant violation, written in the same
/// transaction as the append. Marten hands an inline projection every event of a commit at once (of
/// all its streams), and the decision rows of all of them go in one statement: a statement per event
/// halved the journal's throughput when each event held one decision (bench --only journal, side by
/// side with the projection off: PersistAll 7.1–7.7 k → 16.4–17.6 k events/s). Rows are insert-only,
/// so many events of a run in one commit never race on a shared document. The run is the persistence
/// id's prefix ("RUN/kvm-vm1"). Marten runs it for events appended through a session (the import);
/// the journal appends with a statement of its own and hands its commits to <see cref="Commit"/>
/// itself.</summary>
public sealed class DecisionProjection : IProjection
{
    public static string RunOf(string persistenceId)
    {
        var slash = persistenceId.LastIndexOf('/');
        return slash < 0 ? "" : persistenceId[..slash];
    }

    public Task ApplyAsync(IDocumentOperations ops, IReadOnlyList<IEvent> events, CancellationToken cancellation)
    {
        var commit = new Commit();
        foreach (var e in events)
            if (e.Data is JournalEntry entry && e.StreamKey is { } stream) commit.Add(stream, e.Version, entry);
        commit.Queue(ops, genericPlans: true);
        return Task.CompletedTask;
    }

    /// <summary>The read side of one commit: what Marten hands the projection when events are appended
    /// through a session, and what the journal hands it for the events it appends with its own
    /// statement (<see cref="JournalAppend"/>), which Marten's projections do not see.</summary>
    internal sealed class Commit
    {
        private DecisionRows.Batch? _rows;
        private readonly List<ViolationRow> _violations = [];

        public void Add(string stream, long version, JournalEntry entry)
        {
            if (entry.Rejected || entry.Type is null || entry.Data is not { } data) return;
            var run = RunOf(stream);
            if (entry.Type is "stage2_fault_resolved" or "stage2_faults_resolved")
            {
                var decisions = DecisionEvents.Of(entry.Decoded ?? data.Decode(entry.Type, entry.SchemaVersion));
                (_rows ??= new()).AddEvent(stream, version, entry.Type == "stage2_faults_resolved", run, decisions);
            }
            else if (entry.Type == "invariant_violation_detected")
            {
                var v = (entry.Decoded as InvariantViolationDetected) ?? (InvariantViolationDetected)data.Decode(entry.Type, entry.SchemaVersion);
                _violations.Add(new ViolationRow
                {
                    Id = $"{stream}/{version}", Run = run, Invariant = v.Invariant, Detail = v.Detail,
                    OffendingSeq = v.Seq, OffendingStream = v.Stream,
                });
            }
        }

        /// <summary>Marten documents to store (violation rows): these need a Marten session.</summary>
        public bool HasDocuments => _violations.Count > 0;

        /// <summary>The decision rows of the commit, if it has decisions (for the journal's append
        /// statement, <see cref="JournalAppend.StatementWith"/>).</summary>
        public DecisionRows.Batch? RowBatch => _rows is { Rows: > 0 } rows ? rows : null;

        /// <summary>The decision rows' insert, if the commit has decisions.</summary>
        public TypedStatement? Rows(IReadOnlyStoreOptions options) =>
            RowBatch?.InsertStatement(options.DatabaseSchemaName, options.Events.DatabaseSchemaName);

        /// <summary>Into a Marten session, after the append: the documents and the decision rows' insert.
        /// <paramref name="genericPlans"/>: set generic planning first (<see cref="DecisionRows.GenericPlans"/>),
        /// unless the journal's append before it in the transaction has.</summary>
        public void Queue(IDocumentOperations ops, bool genericPlans)
        {
            foreach (var v in _violations) ops.Store(v);
            if (Rows(ops.DocumentStore.Options) is { } rows) ops.QueueOperation(new DecisionRows.Insert(rows, genericPlans));
        }
    }
}

/// <summary>The summary of a run from the projected rows and the event table.</summary>
public static class RunSummaries
{
    public static async Task<RunSummary> ForRunAsync(IQuerySession session, string run, CancellationToken ct = default)
    {
        var counts = await DecisionRows.CountsAsync(session, run, ct);
        return new RunSummary
        {
            Id = run,
            Events = await EventCountAsync(session, run, ct),
            Decisions = counts.Sum(c => c.Count),
            ByResult = counts.GroupBy(c => c.Result).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(c => c.Count)),
            ByMemType = counts.Where(c => c.MemType is not null).GroupBy(c => c.MemType!).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(c => c.Count)),
            Errors = counts.Where(c => c.Result == nameof(FaultResult.Error)).Sum(c => c.Count),
            InvariantViolations = await session.Query<ViolationRow>().Where(v => v.Run == run).CountAsync(ct),
        };
    }

    /// <summary>A run's events: the sum of its streams' versions (a stream's versions run 1, 2, 3, …
    /// without gaps, and events are never removed), from <c>mt_streams</c>, its id matched whole
    /// (<c>starts_with</c>). Counting the rows of <c>mt_events</c> by a LIKE on the stream id scanned
    /// every run's events and let '_' in a run id match any character.</summary>
    public static async Task<long> EventCountAsync(IQuerySession session, string run, CancellationToken ct = default)
    {
        var conn = await session.OpenConnectionAsync(ct);
        await using var cmd = new Npgsql.NpgsqlCommand(
            $"select coalesce(sum(version), 0)::bigint from {session.DocumentStore.Options.Events.DatabaseSchemaName}.mt_streams where starts_with(id, @prefix)", conn);
        cmd.Parameters.AddWithValue("prefix", run + "/");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
