using ActorSim.Domain.Invariants;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Stage2;
using ActorSim.Persistence.Journal;
using ActorSim.Persistence.Serialization;
using JasperFx.Events;
using Marten;
using Marten.Events.Projections;

namespace ActorSim.Persistence.ReadSide;

/// <summary>Inline Marten projection over the journal: a <see cref="DecisionRow"/> per stage-2 fault
/// decision and a <see cref="ViolationRow"/> per invariant violation, written in the same transaction
/// as the append. Rows are insert-only (one per event), so many events of a run in one commit never
/// race on a shared document. The run is the persistence id's prefix ("RUN/kvm-vm1").</summary>
public sealed partial class DecisionProjection : EventProjection
{
    public static string RunOf(string persistenceId)
    {
        var slash = persistenceId.LastIndexOf('/');
        return slash < 0 ? "" : persistenceId[..slash];
    }

    public void Project(IEvent<JournalEntry> e, IDocumentOperations ops)
    {
        var entry = e.Data;
        if (entry.Rejected || entry.Type is null || e.StreamKey is null || entry.Data is not { } data) return;
        var run = RunOf(e.StreamKey);
        if (entry.Type is "stage2_fault_resolved" or "stage2_faults_resolved")
        {
            var decisions = DecisionEvents.Of(entry.Decoded ?? DomainEventSerializer.FromJson(entry.Type, entry.SchemaVersion, data.Element));
            var rows = new DecisionRow[decisions.Count];
            for (var i = 0; i < decisions.Count; i++)
            {
                var d = decisions[i];
                var o = d.Outcome;
                string? memType = o.Leaf is { } leaf && MemAttr.TypeOf(leaf.MemAttr, d.Inputs.Policy.Cpu.Fwb) is { } t ? MemAttr.MemTypeOf(t).Name() : null;
                rows[i] = new DecisionRow
                {
                    // A batch event's decisions are "stream/version/index".
                    Id = entry.Type == "stage2_fault_resolved" ? $"{e.StreamKey}/{e.Version}" : $"{e.StreamKey}/{e.Version}/{i}",
                    Run = run, Vm = d.Inputs.Vm, Vcpu = d.Inputs.Vcpu,
                    Gpa = (long)d.Inputs.Gpa, GpaPage = (long)(d.Inputs.Gpa & ~0xFFFUL), Op = d.Inputs.Op.ToString(),
                    Result = o.Result.ToString(), Path = o.Path.ToString(), Errno = o.Errno == Errno.None ? null : o.Errno.ToString(),
                    MemType = memType, Stream = e.StreamKey, Version = e.Version, Index = i,
                };
            }
            StoreDecisionRows(ops, e.StreamKey, e.Version, rows);
        }
        else if (entry.Type == "invariant_violation_detected")
        {
            var v = (entry.Decoded as InvariantViolationDetected) ?? (InvariantViolationDetected)DomainEventSerializer.FromJson(entry.Type, entry.SchemaVersion, data.Element);
            ops.Store(new ViolationRow
            {
                Id = $"{e.StreamKey}/{e.Version}", Run = run, Invariant = v.Invariant, Detail = v.Detail,
                OffendingSeq = v.Seq, OffendingStream = v.Stream,
            });
        }
    }

    /// <summary>An event's decision rows as one statement. <c>GlobalSeq</c> is filled in by the database:
    /// in Quick append mode the event's global sequence number is assigned by the append function in the
    /// same batch, so <c>IEvent.Sequence</c> is still 0 when an inline projection runs (every row had 0
    /// before). The append comes first in Marten's batch, so the event row is there to read.
    /// The rows stay Marten documents (same table, JSON and indexes; read with Query&lt;DecisionRow&gt;).</summary>
    private void StoreDecisionRows(IDocumentOperations ops, string stream, long version, DecisionRow[] rows)
    {
        var options = ops.DocumentStore.Options;
        // One projection per store: the statement is built once, not per event.
        _insertRows ??=
            $"insert into {options.FindOrResolveDocumentType(typeof(DecisionRow)).TableName.QualifiedName} (id, data, mt_dotnet_type) " +
            $"select r->>'Id', jsonb_set(r, '{{GlobalSeq}}', to_jsonb((select seq_id from {options.Events.DatabaseSchemaName}.mt_events where stream_id = ? and version = ?))), ? " +
            "from jsonb_array_elements(?::jsonb) r " +
            "on conflict (id) do update set data = excluded.data, mt_dotnet_type = excluded.mt_dotnet_type, mt_last_modified = transaction_timestamp()";
        ops.QueueSqlCommand(_insertRows, stream, version, typeof(DecisionRow).FullName!, options.Serializer().ToJson(rows));
    }

    private string? _insertRows;
}

/// <summary>The summary of a run from the projected rows and the event table.</summary>
public static class RunSummaries
{
    public static async Task<RunSummary> ForRunAsync(IQuerySession session, string run, CancellationToken ct = default)
    {
        var prefix = run + "/";
        var rows = await session.Query<DecisionRow>().Where(d => d.Run == run).Select(d => new { d.Result, d.MemType }).ToListAsync(ct);
        return new RunSummary
        {
            Id = run,
            Events = await session.Events.QueryAllRawEvents().Where(e => e.StreamKey!.StartsWith(prefix)).CountAsync(ct),
            Decisions = rows.Count,
            ByResult = rows.GroupBy(r => r.Result).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (long)g.Count()),
            ByMemType = rows.Where(r => r.MemType is not null).GroupBy(r => r.MemType!).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (long)g.Count()),
            Errors = rows.Count(r => r.Result == nameof(FaultResult.Error)),
            InvariantViolations = await session.Query<ViolationRow>().Where(v => v.Run == run).CountAsync(ct),
        };
    }
}
