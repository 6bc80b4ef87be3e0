namespace ActorSim.Persistence.ReadSide;

/// <summary>One stage-2 fault decision, for the decision history of a run / VM / GPA page: a row of
/// <see cref="DecisionRows"/> as <see cref="DecisionRows.ForRunAsync"/> reads it. Id:
/// "persistenceId/version", or "persistenceId/version/index" for a decision of a batch event.</summary>
public sealed class DecisionRow
{
    public string Id { get; set; } = "";
    public string Run { get; set; } = "";
    public string Vm { get; set; } = "";
    public int Vcpu { get; set; }
    /// <summary>The faulting IPA aligned down to 4 KiB.</summary>
    public long GpaPage { get; set; }
    public long Gpa { get; set; }
    public string Op { get; set; } = "";
    public string Result { get; set; } = "";
    public string Path { get; set; } = "";
    public string? Errno { get; set; }
    /// <summary>Stage-2 memory type of the leaf afterwards (Device-nGnRE, Normal-NC, Normal-WB), if any.</summary>
    public string? MemType { get; set; }
    public long GlobalSeq { get; set; }
    public string Stream { get; set; } = "";
    public long Version { get; set; }
    /// <summary>The decision's place in its event (0 unless the event is a batch).</summary>
    public int Index { get; set; }
}

/// <summary>An invariant violation found during a run. Id: "persistenceId/version".</summary>
public sealed class ViolationRow
{
    public string Id { get; set; } = "";
    public string Run { get; set; } = "";
    public string Invariant { get; set; } = "";
    public string Detail { get; set; } = "";
    /// <summary>Global sequence number (as the checker counted) of the offending event.</summary>
    public long OffendingSeq { get; set; }
    public string OffendingStream { get; set; } = "";
}

/// <summary>Counts for a run, computed from the projected rows and the event table
/// (<see cref="RunSummaries"/>).</summary>
public sealed class RunSummary
{
    public string Id { get; set; } = "";
    public long Events { get; set; }
    public long Decisions { get; set; }
    public Dictionary<string, long> ByResult { get; set; } = [];
    public Dictionary<string, long> ByMemType { get; set; } = [];
    public long Errors { get; set; }
    public long InvariantViolations { get; set; }
    public string InvariantStatus => InvariantViolations == 0 ? "hold" : "violated";
}

/// <summary>What a run was started with, so it can be reproduced. Written by the host.</summary>
public sealed class RunInfo
{
    public string Id { get; set; } = "";
    public long Seed { get; set; }
    public string Kernel { get; set; } = "";
    public bool Fwb { get; set; }
    public bool Dic { get; set; }
    /// <summary>The host CPU had MTE (a scenario's <c>cpu.mte</c>; false for a seeded run).</summary>
    public bool Mte { get; set; }
    public int WordSize { get; set; } = 64;
    /// <summary>Workload shape of an <c>actorsim run</c> (0 for scenarios and imports).</summary>
    public int Vms { get; set; }
    public int Vcpus { get; set; }
    public string? Scenario { get; set; }
    public string? Commit { get; set; }
    /// <summary>The build that started the run had uncommitted changes (BuildInfo.Modified): <see cref="Commit"/>
    /// alone does not reproduce it. (An event log's header has the commit alone.)</summary>
    public bool CommitModified { get; set; }
    public DateTimeOffset Started { get; set; }
    public DateTimeOffset? Ended { get; set; }
    /// <summary>When <c>actorsim import</c> read the run in from an event log (null for a run recorded here).</summary>
    public DateTimeOffset? Imported { get; set; }
}
