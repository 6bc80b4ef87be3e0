using ActorSim.Actors;
using ActorSim.Actors.Scenarios;
using ActorSim.Persistence.ReadSide;
using Akka.Actor;
using Marten;

namespace ActorSim.Persistence.Tests;

/// <summary>A scenario through the actors on the Marten journal: every event is in PostgreSQL, and the
/// inline projection gives the decision history per VM and GPA page and the run summary.</summary>
public sealed class ReadSideTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    private static string ScenarioFile(string name)
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "ActorSim.sln"))) dir = Path.GetDirectoryName(dir)!;
        return Path.Combine(dir, "scenarios", name);
    }

    [Fact]
    public async Task A_scenario_on_the_real_journal_projects_its_decisions_and_summary()
    {
        var scenario = ScenarioParser.ParseFile(ScenarioFile("o06-memory-disable-and-enable.yaml"));
        using var sys = ActorSystem.Create("readside", PostgresSchema.AkkaConfig(schema.Name).WithFallback(SimHost.BaseConfig(false)));
        var results = await ScenarioRunner.RunAsync(sys, scenario, runId: "rs1");
        Assert.True(results.All(r => r.Passed), string.Join("\n", results.Where(r => !r.Passed)));
        await sys.Terminate();

        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        await using var session = store.QuerySession();
        var page = await session.Query<DecisionRow>()
            .Where(d => d.Run == "rs1" && d.Vm == "vm1" && d.GpaPage == 0x80_0000_1000L).OrderBy(d => d.GlobalSeq).ToListAsync();
        // write (mapped NC), read after disable (EFAULT), read after enable (mapped NC)
        Assert.Equal(["Mapped:Normal-NC", "Error:", "Mapped:Normal-NC"], page.Select(d => $"{d.Result}:{d.MemType}"));
        Assert.Equal("EFAULT", page[1].Errno);
        Assert.Equal("PfnError", page[1].Path);
        // Each row carries its event's global sequence number (Quick append assigns it in the database).
        foreach (var row in page)
        {
            var ev = await session.Events.QueryAllRawEvents().SingleAsync(e => e.StreamKey == row.Stream && e.Version == row.Version);
            Assert.Equal(ev.Sequence, row.GlobalSeq);
        }
        Assert.True(page[0].GlobalSeq > 0 && page[0].GlobalSeq < page[1].GlobalSeq && page[1].GlobalSeq < page[2].GlobalSeq, string.Join(",", page.Select(r => r.GlobalSeq)));

        var summary = await RunSummaries.ForRunAsync(session, "rs1");
        Assert.Equal(4, summary.Decisions);
        Assert.Equal(1, summary.Errors);
        Assert.Equal(3, summary.ByMemType["Normal-NC"]);
        Assert.Equal("hold", summary.InvariantStatus);
        Assert.True(summary.Events > 20, $"{summary.Events} events");
        Assert.Equal(0, summary.InvariantViolations);
    }
}

public sealed class ViolationProjectionTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task A_persisted_violation_shows_in_the_run_summary()
    {
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        var e = new Domain.Invariants.InvariantViolationDetected(17, "rs2/kvm-vm1", "I5", "installed after an invalidation");
        journal.Tell(new Akka.Persistence.WriteMessages([new Akka.Persistence.AtomicWrite(new Akka.Persistence.Persistent(e, 1, "rs2/invariants", "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<Akka.Persistence.WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        await using var session = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name).QuerySession();
        var summary = await RunSummaries.ForRunAsync(session, "rs2");
        Assert.Equal((1L, "violated"), (summary.InvariantViolations, summary.InvariantStatus));
        var row = await session.Query<ViolationRow>().SingleAsync(v => v.Run == "rs2");
        Assert.Equal(("I5", 17L, "rs2/kvm-vm1"), (row.Invariant, row.OffendingSeq, row.OffendingStream));
    }
}

public sealed class BatchProjectionTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    [Fact]
    public async Task A_batch_event_projects_one_row_per_decision_in_order()
    {
        var batch = EventSerializationTests.SampleEvents().OfType<Domain.Kvm.Stage2FaultsResolved>().Single();
        Assert.True(batch.Decisions.Length >= 2);
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        journal.Tell(new Akka.Persistence.WriteMessages([new Akka.Persistence.AtomicWrite(new Akka.Persistence.Persistent(batch, 1, "rs3/kvm-vm1", "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<Akka.Persistence.WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        await using var session = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name).QuerySession();
        var rows = await session.Query<DecisionRow>().Where(d => d.Run == "rs3").OrderBy(d => d.Index).ToListAsync();
        Assert.Equal(batch.Decisions.Select((d, i) => ($"rs3/kvm-vm1/1/{i}", (long)d.Inputs.Gpa, d.Outcome.Result.ToString())),
            rows.Select(r => (r.Id, r.Gpa, r.Result)));
        var seq = (await session.Events.QueryAllRawEvents().SingleAsync(e => e.StreamKey == "rs3/kvm-vm1")).Sequence;
        Assert.True(seq > 0);
        Assert.All(rows, r => Assert.Equal(seq, r.GlobalSeq));
        Assert.Equal(batch.Decisions.Length, (await RunSummaries.ForRunAsync(session, "rs3")).Decisions);
    }
}
