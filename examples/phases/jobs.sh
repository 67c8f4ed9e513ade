# A jobs file split into phases by "# phase:" markers (no preset needed). Commands run in the
# workdir, through bash when they use shell syntax. Phases are barriers: no command of a phase
# starts before every command of the previous phase has finished.
#
#   npx tasker plan examples/phases/jobs.sh
#   npx tasker run --workdir /tmp/tasker-phases --clean examples/phases/jobs.sh

# phase: setup (tasker)
# "(tasker)": run one at a time, in file order, so each line may rely on the one before it.
mkdir -p out
mkdir -p out/parts
echo "setup done by run $TASKER_RUN_ID" > out/setup.txt

# phase: work
# No "(tasker)": run in parallel (-j N at a time here, by the workers in a distributed run).
# Each line writes its own file, so the order they finish in does not matter.
sleep 0.3 && echo "part 01, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-01.txt
sleep 0.3 && echo "part 02, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-02.txt
sleep 0.3 && echo "part 03, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-03.txt
sleep 0.3 && echo "part 04, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-04.txt
sleep 0.3 && echo "part 05, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-05.txt
sleep 0.3 && echo "part 06, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-06.txt
sleep 0.3 && echo "part 07, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-07.txt
sleep 0.3 && echo "part 08, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-08.txt
sleep 0.3 && echo "part 09, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-09.txt
sleep 0.3 && echo "part 10, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-10.txt
sleep 0.3 && echo "part 11, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-11.txt
sleep 0.3 && echo "part 12, phase $TASKER_PHASE, command $TASKER_COMMAND_ID" > out/parts/part-12.txt

# phase: report
# Starts only when all of "work" is done. Parallel again: these lines do not depend on each other.
cat out/parts/part-*.txt > out/report.txt
echo "$(find out/parts -name 'part-*.txt' | wc -l) parts done" > out/count.txt
