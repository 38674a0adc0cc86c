"""The parts of tools/tiny_data.py: the folder marker (marker), class-tinted images and the
split/list writers (images), and one maker per CoOp layout: data sets with a CoOp split file
(split_file_sets) and those read from their own lists or class folders (list_and_folder_sets).
tiny_data.py is the command line and the table of makers."""
