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

/// <summary>Inline Marten projection over the journal: a row of <see cref="DecisionRows"/> per stage-2
/// fault decision (an event's rows in one statement) and a <see cref="ViolationRow"/> per invariant
/// violation, written in the same transaction as the append. Rows are insert-only, so many events of a
/// run in one commit never race on a shared document. The run is the persistence id's prefix
/// ("RUN/kvm-vm1").</summary>
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
            var n = decisions.Count;
            var (idx, vm, vcpu, gpa, op, result, path, errno, memType) =
                (new int[n], new string[n], new int[n], new long[n], new string[n], new string[n], new string[n], new string?[n], new string?[n]);
            for (var i = 0; i < n; i++)
            {
                var d = decisions[i];
                var o = d.Outcome;
                idx[i] = i;
                vm[i] = d.Inputs.Vm;
                vcpu[i] = d.Inputs.Vcpu;
                gpa[i] = (long)d.Inputs.Gpa;
                op[i] = d.Inputs.Op.ToString();
                result[i] = o.Result.ToString();
                path[i] = o.Path.ToString();
                errno[i] = o.Errno == Errno.None ? null : o.Errno.ToString();
                memType[i] = o.Leaf is { } leaf && MemAttr.TypeOf(leaf.MemAttr, d.Inputs.Policy.Cpu.Fwb) is { } t ? MemAttr.MemTypeOf(t).Name() : null;
            }
            var options = ops.DocumentStore.Options;
            // One projection per store: the statement is built once, not per event.
            _insertRows ??= DecisionRows.InsertSql(options.DatabaseSchemaName, options.Events.DatabaseSchemaName);
            // A batch event's decisions are "stream/version/index", a single decision's "stream/version".
            ops.QueueSqlCommand(_insertRows, e.StreamKey, e.Version, entry.Type == "stage2_faults_resolved", run, e.StreamKey, e.Version,
                idx, vm, vcpu, gpa, op, result, path, errno, memType);
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

    private string? _insertRows;
}

/// <summary>The summary of a run from the projected rows and the event table.</summary>
public static class RunSummaries
{
    public static async Task<RunSummary> ForRunAsync(IQuerySession session, string run, CancellationToken ct = default)
    {
        var prefix = run + "/";
        var counts = await DecisionRows.CountsAsync(session, run, ct);
        return new RunSummary
        {
            Id = run,
            Events = await session.Events.QueryAllRawEvents().Where(e => e.StreamKey!.StartsWith(prefix)).CountAsync(ct),
            Decisions = counts.Sum(c => c.Count),
            ByResult = counts.GroupBy(c => c.Result).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(c => c.Count)),
            ByMemType = counts.Where(c => c.MemType is not null).GroupBy(c => c.MemType!).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(c => c.Count)),
            Errors = counts.Where(c => c.Result == nameof(FaultResult.Error)).Sum(c => c.Count),
            InvariantViolations = await session.Query<ViolationRow>().Where(v => v.Run == run).CountAsync(ct),
        };
    }
}
