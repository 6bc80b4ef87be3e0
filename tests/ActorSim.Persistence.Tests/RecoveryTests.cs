using ActorSim.Actors;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;
using Akka.Actor;
using Akka.Configuration;

namespace ActorSim.Persistence.Tests;

/// <summary>All actors persist through the Marten journal; a new actor system on the same database
/// recovers the same state (folded deciders compared), with and without snapshots.</summary>
public sealed class RecoveryTests(SchemaFixture schema) : IClassFixture<SchemaFixture>
{
    private Config ActorConfig() => PostgresSchema.AkkaConfig(schema.Name).WithFallback(SimHost.BaseConfig(false));

    private sealed record HostState(AddressSpace Mm, VfioDevice[] Devices, KvmVm[] Vms);

    private static async Task<HostState> Capture(SimHost h)
    {
        var mm = await h.Ask<AddressSpace>(h.Mm, new MmGetState());
        var devices = new List<VfioDevice>();
        foreach (var d in SeededWorkload.Devices()) devices.Add(await h.Ask<VfioDevice>(h.Device(d.Name), new VfioGetState()));
        var vms = new List<KvmVm>();
        foreach (var v in SeededWorkload.Vms(2)) vms.Add(await h.Ask<KvmVm>(h.Vm(v.Name), new KvmGetState()));
        return new HostState(mm, [.. devices], [.. vms]);
    }

    private static void AssertSame(HostState a, HostState b)
    {
        Assert.True(a.Mm.Vmas.SequenceEqual(b.Mm.Vmas), "VMAs differ");
        Assert.Equal(a.Mm.NextRamPfn, b.Mm.NextRamPfn);
        for (var i = 0; i < a.Devices.Length; i++)
        {
            Assert.Equal((a.Devices[i].MemoryEnabled, a.Devices[i].Power), (b.Devices[i].MemoryEnabled, b.Devices[i].Power));
            Assert.True(a.Devices[i].RequestedBars.SetEquals(b.Devices[i].RequestedBars));
        }
        for (var i = 0; i < a.Vms.Length; i++)
        {
            Assert.True(a.Vms[i].Memslots.SequenceEqual(b.Vms[i].Memslots), "memslots differ");
            Assert.True(a.Vms[i].Stage2.Equals(b.Vms[i].Stage2), $"{a.Vms[i].Name} stage-2 differs");
            Assert.Equal((a.Vms[i].MmuInvalidateSeq, a.Vms[i].MmuInvalidateInProgress), (b.Vms[i].MmuInvalidateSeq, b.Vms[i].MmuInvalidateInProgress));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(25)]
    public async Task A_new_actor_system_on_the_same_database_recovers_the_same_state(int snapshotEvery)
    {
        var runId = $"recovery-{snapshotEvery}";
        var policy = KernelPolicy.Of("6.9");
        var options = new SimHostOptions(SnapshotEvery: snapshotEvery);
        HostState before;
        using (var sys1 = ActorSystem.Create("one", ActorConfig()))
        {
            var h = await SimHost.StartAsync(sys1, runId, policy, SeededWorkload.Devices(), SeededWorkload.Vms(2), options);
            var w = await SeededWorkload.SetUpAsync(h, seed: 11, vms: 2, vcpus: 3);
            for (var i = 0; i < 40; i++) await w.RoundAsync();
            Assert.True(w.Results.GetValueOrDefault(FaultResult.Mapped) > 20);
            before = await Capture(h);
            await sys1.Terminate();
        }
        Assert.NotEmpty(before.Vms[0].Stage2.Leaves);
        using var sys2 = ActorSystem.Create("two", ActorConfig());
        var h2 = await SimHost.StartAsync(sys2, runId, policy, SeededWorkload.Devices(), SeededWorkload.Vms(2), options);
        AssertSame(before, await Capture(h2));
        if (snapshotEvery > 0)
        {
            await using var conn = new Npgsql.NpgsqlConnection(PostgresSchema.ConnectionString);
            await conn.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand($"select count(*) from {schema.Name}.mt_doc_snapshotdocument", conn);
            Assert.True((long)(await cmd.ExecuteScalarAsync())! > 0, "no snapshot was saved");
        }
        await sys2.Terminate();
    }

    [Fact]
    public async Task With_the_Marten_journal_actors_keep_every_event_and_snapshot_only_when_asked()
    {
        using var sys = ActorSystem.Create("policy", ActorConfig());
        Assert.Equal(SnapshotPolicy.Never, new SimHostOptions().Snapshots(sys));
        Assert.Equal(new SnapshotPolicy(25, DropCoveredEvents: false), new SimHostOptions(SnapshotEvery: 25).Snapshots(sys));
        await sys.Terminate();
    }
}
