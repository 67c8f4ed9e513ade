# A makita-shaped jobs file: the layout of an ASReview makita "basic" template jobs.sh (one
# command per line), with every asreview/python command replaced by a tiny bash stand-in from
# bin/ so that it runs anywhere in a few seconds. Commands run in the workdir, which must hold
# data/ and bin/ (staged there with --stage); see examples/README.md.
#
#   npx tasker plan --split makita examples/makita/jobs.sh
#   npx tasker run --split makita --workdir /tmp/tasker-demo --clean \
#     --stage examples/makita/data --stage examples/makita/bin examples/makita/jobs.sh
#
# --split makita cuts it into the three parts of asreview-cloud's split-file.py:
#   setup     (tasker, in order): everything before the first simulate line, plus the mkdir and
#                                 describe lines found before the last simulate line;
#   simulate  (parallel):         the lines containing "simulate";
#   aggregate (parallel):         everything else (metrics, wordclouds, plots, merges).
#
# In a distributed run, --pool simulate=sims sends the simulations to the workers started with
# --pool sims (bigger machines, say) and leaves the rest on the default pool; see examples/README.md.

# version 1.x (stand-in)

# Create folder structure. By default, the folder 'output' is used to store output.
mkdir -p output
mkdir -p output/simulation
mkdir -p output/tables
mkdir -p output/figures

##################################
### DATASET: dataset_a
##################################
# Create output folder
mkdir -p output/simulation/dataset_a/
mkdir -p output/simulation/dataset_a/metrics

# Collect descriptives about the dataset dataset_a
mkdir -p output/simulation/dataset_a/descriptives
bash bin/asreview-standin.sh data describe data/dataset_a.csv -o output/simulation/dataset_a/descriptives/data_stats_dataset_a.json

# Generate wordcloud visualizations of all datasets
bash bin/asreview-standin.sh wordcloud data/dataset_a.csv -o output/figures/wordcloud_dataset_a.svg --width 800 --height 500

# Simulate runs
mkdir -p output/simulation/dataset_a/state_files
bash bin/asreview-standin.sh simulate data/dataset_a.csv -s output/simulation/dataset_a/state_files/sim_dataset_a_0.json --init_seed 535 --seed 165
bash bin/asreview-standin.sh metrics output/simulation/dataset_a/state_files/sim_dataset_a_0.json -o output/simulation/dataset_a/metrics/metrics_sim_dataset_a_0.json
bash bin/asreview-standin.sh simulate data/dataset_a.csv -s output/simulation/dataset_a/state_files/sim_dataset_a_1.json --init_seed 535 --seed 166
bash bin/asreview-standin.sh metrics output/simulation/dataset_a/state_files/sim_dataset_a_1.json -o output/simulation/dataset_a/metrics/metrics_sim_dataset_a_1.json
bash bin/asreview-standin.sh simulate data/dataset_a.csv -s output/simulation/dataset_a/state_files/sim_dataset_a_2.json --init_seed 535 --seed 167
bash bin/asreview-standin.sh metrics output/simulation/dataset_a/state_files/sim_dataset_a_2.json -o output/simulation/dataset_a/metrics/metrics_sim_dataset_a_2.json
bash bin/asreview-standin.sh simulate data/dataset_a.csv -s output/simulation/dataset_a/state_files/sim_dataset_a_3.json --init_seed 535 --seed 168
bash bin/asreview-standin.sh metrics output/simulation/dataset_a/state_files/sim_dataset_a_3.json -o output/simulation/dataset_a/metrics/metrics_sim_dataset_a_3.json

# Generate plot for dataset
bash bin/get_plot.sh -s output/simulation/dataset_a/state_files/ -o output/figures/plot_recall_sim_dataset_a.svg

##################################
### DATASET: dataset_b
##################################
# Create output folder
mkdir -p output/simulation/dataset_b/
mkdir -p output/simulation/dataset_b/metrics

# Collect descriptives about the dataset dataset_b
mkdir -p output/simulation/dataset_b/descriptives
bash bin/asreview-standin.sh data describe data/dataset_b.csv -o output/simulation/dataset_b/descriptives/data_stats_dataset_b.json

# Generate wordcloud visualizations of all datasets
bash bin/asreview-standin.sh wordcloud data/dataset_b.csv -o output/figures/wordcloud_dataset_b.svg --width 800 --height 500

# Simulate runs
mkdir -p output/simulation/dataset_b/state_files
bash bin/asreview-standin.sh simulate data/dataset_b.csv -s output/simulation/dataset_b/state_files/sim_dataset_b_0.json --init_seed 535 --seed 165
bash bin/asreview-standin.sh metrics output/simulation/dataset_b/state_files/sim_dataset_b_0.json -o output/simulation/dataset_b/metrics/metrics_sim_dataset_b_0.json
bash bin/asreview-standin.sh simulate data/dataset_b.csv -s output/simulation/dataset_b/state_files/sim_dataset_b_1.json --init_seed 535 --seed 166
bash bin/asreview-standin.sh metrics output/simulation/dataset_b/state_files/sim_dataset_b_1.json -o output/simulation/dataset_b/metrics/metrics_sim_dataset_b_1.json
bash bin/asreview-standin.sh simulate data/dataset_b.csv -s output/simulation/dataset_b/state_files/sim_dataset_b_2.json --init_seed 535 --seed 167
bash bin/asreview-standin.sh metrics output/simulation/dataset_b/state_files/sim_dataset_b_2.json -o output/simulation/dataset_b/metrics/metrics_sim_dataset_b_2.json
bash bin/asreview-standin.sh simulate data/dataset_b.csv -s output/simulation/dataset_b/state_files/sim_dataset_b_3.json --init_seed 535 --seed 168
bash bin/asreview-standin.sh metrics output/simulation/dataset_b/state_files/sim_dataset_b_3.json -o output/simulation/dataset_b/metrics/metrics_sim_dataset_b_3.json

# Generate plot for dataset
bash bin/get_plot.sh -s output/simulation/dataset_b/state_files/ -o output/figures/plot_recall_sim_dataset_b.svg

# Merge descriptives and metrics
bash bin/merge_descriptives.sh
bash bin/merge_metrics.sh
