"""DistilledRetriever: the meta-estimator, both objectives, the student."""

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from skbackward import BackwardSearchRetriever, DistilledRetriever, LabelFilterRetriever
from skbackward._network._model import predict_labels
from skbackward._network._student import draw_conditions
from skbackward.metrics import make_average_precision_scorer, retrieval_scores

from .conftest import HostReads, two_attribute_data

# the published search and ranking (by z* alone: feature_weight 0, not the
# default "auto", which some tests compare against the embeddings' cosine)
TEACHER = dict(epochs=8, embedding_dim=32, max_steps=40, alpha=0.1,
               predicted_first=False, feature_weight=0.0, random_state=0)
STUDENT = dict(epochs=15, random_state=0)


@pytest.fixture(scope="module")
def teacher(digits):
    return BackwardSearchRetriever(**TEACHER).fit(digits[0], digits[2])


@pytest.fixture(scope="module", params=["distill", "amortized"])
def student(request, teacher, digits):
    return DistilledRetriever(
        teacher, prefit=True, objective=request.param, **STUDENT
    ).fit(digits[0], digits[2])


def test_fit_clones_the_teacher(digits):
    teacher = BackwardSearchRetriever(**TEACHER)
    ret = DistilledRetriever(teacher, **STUDENT).fit(digits[0], digits[2])
    assert not hasattr(teacher, "model_")  # the parameter is left untouched
    assert ret.teacher_ is not teacher and hasattr(ret.teacher_, "model_")
    assert ret.model_ is ret.teacher_.model_
    assert ret.n_iter_ == STUDENT["epochs"] == len(ret.loss_curve_)


def test_one_index_is_built_for_student_and_teacher(digits, monkeypatch):
    from skbackward.indexes import ExactIndex

    builds = []
    start = ExactIndex._start_build
    monkeypatch.setattr(ExactIndex, "_start_build",
                        lambda self, *a: builds.append(a) or start(self, *a))
    ret = DistilledRetriever(BackwardSearchRetriever(**TEACHER), **STUDENT)
    ret.fit(digits[0], digits[2])
    assert len(builds) == 1
    assert ret.teacher_.vector_index_ is ret.vector_index_
    np.testing.assert_array_equal(ret.index_labels_, digits[2])


def test_default_teacher_is_a_backward_search_retriever():
    X, shape, _ = two_attribute_data(n=60)
    ret = DistilledRetriever(epochs=2, random_state=0).fit(X, shape)
    assert isinstance(ret.teacher_, BackwardSearchRetriever)
    assert ret.teacher_.random_state is not None  # seeded from ours


def test_prefit_uses_the_teacher_as_is(teacher, student):
    for p, q in zip(teacher.model_.parameters(), student.teacher_.model_.parameters()):
        assert torch.equal(p, q)
    np.testing.assert_array_equal(student.transform(np.eye(64)[:3]),
                                  teacher.transform(np.eye(64)[:3]))


def test_prefit_needs_a_fitted_teacher(digits):
    with pytest.raises(NotFittedError):
        DistilledRetriever(BackwardSearchRetriever(), prefit=True).fit(
            digits[0], digits[2])


def test_prefit_teacher_with_other_features(teacher, digits):
    with pytest.raises(ValueError, match="prefit teacher was fitted on 64"):
        DistilledRetriever(teacher, prefit=True).fit(digits[0][:, :10], digits[2])


def test_prefit_teacher_refuses_labels_that_contradict_its_own(teacher, digits):
    # the teacher was fitted on these items with y: (y + 1) % 10 are all known
    # labels, on the wrong items, and every score would be silently wrong
    X, y = digits[0], digits[2]
    with pytest.raises(ValueError, match="y differs from the labels the prefit "
                                         "teacher holds.*1257 of 1257 rows"):
        DistilledRetriever(teacher, prefit=True, epochs=1).fit(X, (y + 1) % 10)
    one_wrong = y.copy()
    one_wrong[7] = (y[7] + 1) % 10
    with pytest.raises(ValueError, match="at 1 of 1257 rows: row 7"):
        DistilledRetriever(teacher, prefit=True, epochs=1).fit(X, one_wrong)
    # other items than the teacher's: y is their only truth, and is taken
    ret = DistilledRetriever(teacher, prefit=True, epochs=1, random_state=0)
    ret.fit(digits[1], (digits[3] + 1) % 10)
    np.testing.assert_array_equal(ret.index_labels_, (digits[3] + 1) % 10)


def test_student_reaches_the_condition(student, digits):
    _, X_test, _, y_test = digits
    scores = retrieval_scores(student, X_test, y_test, exclude_own_class=True)
    assert scores["precision"] > 0.6  # plain kNN sits near 0.1 here


def test_same_api_as_the_teacher(student, digits):
    X = digits[1][:6]
    Z = student.transform(X, condition=[1, 2, 3, None, 5, 6])
    assert Z.shape == (6, TEACHER["embedding_dim"]) and Z.dtype == np.float64
    np.testing.assert_allclose(Z[3], student.transform(X[3:4])[0], rtol=0, atol=1e-12)
    assert student.transform(X.astype(np.float32), condition=1).dtype == np.float32
    d, i = student.kneighbors(X, 4, condition=7)
    assert d.shape == i.shape == (6, 4) and np.all(np.diff(d, axis=1) >= 0)
    assert student.kneighbors(None, 3, condition=7, return_distance=False).shape == (
        student.n_index_samples_, 3)
    with pytest.raises(ValueError, match="unknown condition label"):
        student.transform(X, condition=42)


def test_rows_are_independent_of_the_batch(student, digits):
    X = digits[1][:8]
    Z = student.transform(X, condition=4)
    np.testing.assert_allclose(Z[2:5], student.transform(X[2:5], condition=4),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("objective", ["distill", "amortized"])
def test_multi_attribute_and_partial_conditions(objective):
    X, shape, colour = two_attribute_data(n=400)
    y = np.array([shape, colour], dtype=object).T
    teacher = BackwardSearchRetriever(**{**TEACHER, "alpha": 0.05})
    ret = DistilledRetriever(teacher, objective=objective, epochs=40,
                             random_state=0).fit(X, y)
    ind = ret.kneighbors(X[:60], 10, return_distance=False,
                         condition={0: 2, 1: "red"})
    assert ((shape[ind] == 2) & (colour[ind] == "red")).mean() > 0.6
    ind = ret.kneighbors(X[:60], 10, return_distance=False, condition={1: "blue"})
    assert (colour[ind] == "blue").mean() > 0.6


def test_students_fitted_in_threads_are_reproducible(student, teacher, digits):
    from concurrent.futures import ThreadPoolExecutor

    objective = student.objective
    with ThreadPoolExecutor(3) as pool:
        fits = list(pool.map(lambda _: DistilledRetriever(
            teacher, prefit=True, objective=objective, **STUDENT
        ).fit(digits[0], digits[2]), range(3)))
    for ret in fits:
        assert ret.loss_curve_ == student.loss_curve_
        np.testing.assert_array_equal(ret.transform(digits[1][:50], condition=3),
                                      student.transform(digits[1][:50], condition=3))


def test_same_random_state_is_bit_identical(teacher, digits):
    a, b = (
        DistilledRetriever(teacher, prefit=True, **STUDENT).fit(digits[0], digits[2])
        for _ in range(2)
    )
    np.testing.assert_array_equal(a.transform(digits[1], condition=3),
                                  b.transform(digits[1], condition=3))


def test_pickle_roundtrip(student, digits):
    X = digits[1][:10]
    restored = pickle.loads(pickle.dumps(student))
    for u, v in zip(restored.kneighbors(X, condition=2),
                    student.kneighbors(X, condition=2)):
        np.testing.assert_array_equal(u, v)
    assert next(restored.student_.parameters()).device.type == "cpu"


def test_grid_search_over_the_teachers_alpha(digits):
    X_train, _, y_train, _ = digits
    est = DistilledRetriever(BackwardSearchRetriever(**TEACHER), epochs=5,
                             random_state=0)
    grid = GridSearchCV(est, {"teacher__alpha": [0.02, 3.0]},
                        scoring=make_average_precision_scorer(
                            k=10, exclude_own_class=True), cv=2)
    grid.fit(X_train, y_train)
    assert grid.best_params_ == {"teacher__alpha": 0.02}
    assert clone(grid.best_estimator_).get_params()["teacher__alpha"] == 0.02


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"objective": "nope"}, ValueError, r"'objective' parameter .* among"),
        ({"teacher": "nope"}, TypeError,
         r"'teacher' parameter .* None or an instance of .*BackwardSearchRetriever"),
        ({"targets_per_sample": 0}, ValueError,
         r"'targets_per_sample' parameter .* \[1, inf\). Got 0"),
        ({"l1_weight": -1.0}, ValueError, r"'l1_weight' parameter .* Got -1.0"),
    ],
)
def test_bad_parameters(params, error, match, digits):
    with pytest.raises(error, match=match):
        DistilledRetriever(**{**STUDENT, **params}).fit(digits[0][:50], digits[2][:50])


def test_draw_conditions_covers_non_empty_subsets():
    t = draw_conditions(4000, [3, 5], torch.Generator().manual_seed(0))
    constrained = t >= 0
    assert constrained.any(1).all()  # never an empty condition
    patterns = {tuple(r) for r in constrained.int().tolist()}
    assert patterns == {(1, 0), (0, 1), (1, 1)}
    assert t[:, 0].max() == 2 and t[:, 1].max() == 4


def test_default_teacher_tunes_through_nested_parameters(digits):
    ret = DistilledRetriever(epochs=2, random_state=0)
    ret.set_params(teacher__alpha=0.07, teacher__epochs=2)
    assert isinstance(ret.teacher, BackwardSearchRetriever)
    assert ret.get_params()["teacher__alpha"] == 0.07
    X_train, _, y_train, _ = digits
    grid = GridSearchCV(DistilledRetriever(epochs=2, random_state=0),
                        {"teacher__alpha": [0.1, 1.0], "teacher__epochs": [2]},
                        scoring=make_average_precision_scorer(k=5), cv=2)
    grid.fit(X_train[:400], y_train[:400])
    # the nested value reached each candidate's teacher: the two alphas score
    # differently, and the refitted best estimator's teacher has the best one
    scores = grid.cv_results_["mean_test_score"]
    assert scores[0] != scores[1]
    best = grid.best_params_["teacher__alpha"]
    assert grid.best_estimator_.teacher_.alpha == best
    assert best == grid.cv_results_["param_teacher__alpha"][np.argmax(scores)]


def test_ranking_options_are_read_from_the_teacher_parameter(student, digits):
    """predicted_first, query_weight and feature_weight are query-time
    options: set_params(teacher__...) on a fitted student applies to the next
    query, as a search's own do; the fitted teacher_ keeps its own."""
    X = digits[1][:10]
    ret = copy.deepcopy(student)  # the module's fixture stays as it is
    assert not ret.teacher.predicted_first
    published = ret.kneighbors(X, 5, return_distance=False, condition=3)
    ret.set_params(teacher__predicted_first=True)
    ind = ret.kneighbors(X, 5, return_distance=False, condition=3)
    assert (ret.vector_index_.predicted_[ind, 0] == 3).all()
    assert not ret.teacher_.predicted_first  # the fitted teacher is not changed
    # the same option on the fitted teacher_ alone does not steer the student
    ret.set_params(teacher__predicted_first=False)
    ret.teacher_.set_params(predicted_first=True)
    np.testing.assert_array_equal(
        ret.kneighbors(X, 5, return_distance=False, condition=3), published)
    ret.set_params(teacher__query_weight=1.0)
    blended = ret.kneighbors(X, 5, return_distance=False, condition=3)
    assert (blended != published).any()
    ret.set_params(teacher__predicted_first="yes")
    with pytest.raises(ValueError, match="'predicted_first' parameter"):
        ret.kneighbors(X, 5, condition=3)


def test_prefit_teacher_with_other_attributes(teacher, digits):
    y2 = np.column_stack([digits[2], digits[2] % 2])
    with pytest.raises(ValueError, match="y has 2 attribute.*fitted on 1"):
        DistilledRetriever(teacher, prefit=True).fit(digits[0], y2)


@pytest.mark.parametrize("objective", ["distill", "amortized"])
def test_student_follows_the_teacher_s_preserve_and_query_weight(objective):
    X, shape, colour = two_attribute_data(n=300, seed=2)
    y = np.array([shape, colour], dtype=object).T
    teacher = BackwardSearchRetriever(**{**TEACHER, "predicted_first": True,
                                         "preserve": "predicted"}).fit(X, y)
    ret = DistilledRetriever(teacher, prefit=True, objective=objective,
                             **STUDENT).fit(X, y)
    # the distillation targets are the teacher's searches keeping the
    # query's other class
    if objective == "distill":
        Z0 = teacher.transform(X)
        Zs, targets, Z_star = ret._distill_targets(Z0, [3, 4], seed=0)
        keep = teacher._kept_classes(Zs, targets)
        assert (keep >= 0).any()
        expected, _ = teacher._condition_embeddings(
            Zs, targets, (targets >= 0).astype(np.float32), keep)
        np.testing.assert_array_equal(Z_star, expected)
    # the ranking: the fitted teacher_'s preserve (trained in), and the
    # teacher parameter's query_weight (read at query time)
    Xq = X[:30]
    plain = copy.deepcopy(ret).set_params(teacher__query_weight=1.0)
    plain.teacher_.set_params(preserve="none")
    kept = copy.deepcopy(ret).set_params(teacher__query_weight=1.0)
    own = predict_labels(ret.model_, ret.transform(Xq), "cpu")[:, 0]
    cond = {1: "red"}
    ind_plain = plain.kneighbors(Xq, 20, return_distance=False, condition=cond)
    ind_kept = kept.kneighbors(Xq, 20, return_distance=False, condition=cond)
    pred = ret.vector_index_.predicted_
    red = list(ret.attribute_classes_[1]).index("red")
    # with preserve, each query's results start with every item predicted
    # red *and* of its own shape (up to 20), then the other red items
    both = (pred[:, 1] == red)[None, :] & (pred[None, :, 0] == own[:, None])
    for q, n_both in enumerate(np.minimum(both.sum(1), 20)):
        assert both[q, ind_kept[q, :n_both]].all()
        assert (pred[ind_kept[q, n_both:], 1] == red).all() or n_both == 20
    assert ((pred[ind_kept, 0] == own[:, None]).mean()
            >= (pred[ind_plain, 0] == own[:, None]).mean())
    # query_weight=1 ranks the predicted candidates by the query itself, as
    # the label filter does: the student's move does not matter then
    lf = LabelFilterRetriever(**{k: TEACHER[k] for k in ("epochs", "embedding_dim",
                                                          "random_state")}).fit(X, y)
    np.testing.assert_array_equal(
        ind_plain, lf.kneighbors(Xq, 20, return_distance=False, condition=cond))


def test_amortized_training_reads_nothing_back_per_batch(teacher, digits):
    """The random conditions are drawn on the host (a CPU generator, so a
    GPU draws the same ones) and which heads the loss needs is read there:
    training reads one value back per epoch, the epoch's loss, not one per
    minibatch."""
    student = DistilledRetriever(teacher, prefit=True, objective="amortized",
                                 epochs=2, batch_size=64, random_state=0)
    with HostReads() as reads:
        student.fit(digits[0], digits[2])
    assert -(-len(digits[0]) // 64) > 10  # minibatches per epoch
    in_training = [c for c in reads.calls if c[3] in ("train_network", "loss")]
    assert len(in_training) == 2, in_training
